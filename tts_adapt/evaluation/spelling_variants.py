"""British spellings mapped to American ones, so a recogniser's spelling is not counted as an error.

Whisper writes whichever spelling its training data favoured ("colour" and "color" both occur), and
reference texts come from either side of the Atlantic. The table covers the regular patterns where a
spelling alone differs (-our/-or, -ise/-ize, -yse/-yze, -re/-er, -ogue/-og, doubled l, -ence/-ense) for
common stems with their inflections, and a short list of single words. Stems are listed explicitly,
never matched by suffix: "hour", "advise" and "exercise" must stay as they are.
"""

from __future__ import annotations

_OUR = (
    "ardour armour behaviour candour clamour colour demeanour endeavour favour fervour flavour glamour "
    "harbour honour humour labour neighbour odour parlour rancour rigour rumour saviour savour splendour "
    "tumour valour vapour vigour"
).split()
_OUR_SUFFIXES = (
    "",
    "s",
    "ed",
    "ing",
    "ful",
    "fully",
    "less",
    "able",
    "ably",
    "ite",
    "ites",
    "er",
    "ers",
    "hood",
    "hoods",
    "ly",
    "y",
    "ist",
    "ists",
)

# -ise stems (without the final "e") whose American form is -ize; -yse likewise to -yze
_ISE = (
    "agonis apologis authoris capitalis categoris centralis characteris civilis colonis criticis "
    "customis emphasis energis familiaris fertilis finalis globalis harmonis hospitalis hypnotis idealis "
    "immunis italicis jeopardis legalis localis magnetis materialis maximis memoris minimis mobilis "
    "modernis neutralis normalis optimis organis pasteuris patronis penalis popularis prioritis privatis "
    "realis recognis revolutionis scrutinis socialis specialis stabilis standardis sterilis subsidis "
    "summaris symbolis sympathis tantalis terroris theoris utilis vaporis visualis vocalis"
).split()
_YSE = "analys catalys paralys".split()
_ISE_SUFFIXES = ("e", "es", "ed", "ing", "er", "ers", "ation", "ations", "able")

_WORDS = {
    # -re / -er
    "centre": "center",
    "centres": "centers",
    "centred": "centered",
    "centring": "centering",
    "theatre": "theater",
    "theatres": "theaters",
    "metre": "meter",
    "metres": "meters",
    "litre": "liter",
    "litres": "liters",
    "fibre": "fiber",
    "fibres": "fibers",
    "kilometre": "kilometer",
    "kilometres": "kilometers",
    "centimetre": "centimeter",
    "centimetres": "centimeters",
    "millimetre": "millimeter",
    "millimetres": "millimeters",
    "calibre": "caliber",
    "sombre": "somber",
    "spectre": "specter",
    "lustre": "luster",
    "meagre": "meager",
    "sabre": "saber",
    "manoeuvre": "maneuver",
    "manoeuvres": "maneuvers",
    # -ogue / -og
    "catalogue": "catalog",
    "catalogues": "catalogs",
    "catalogued": "cataloged",
    "dialogue": "dialog",
    "dialogues": "dialogs",
    "analogue": "analog",
    "analogues": "analogs",
    # doubled l
    "travelled": "traveled",
    "travelling": "traveling",
    "traveller": "traveler",
    "travellers": "travelers",
    "cancelled": "canceled",
    "cancelling": "canceling",
    "labelled": "labeled",
    "labelling": "labeling",
    "modelled": "modeled",
    "modelling": "modeling",
    "fuelled": "fueled",
    "fuelling": "fueling",
    "levelled": "leveled",
    "levelling": "leveling",
    "signalled": "signaled",
    "signalling": "signaling",
    "counselled": "counseled",
    "counselling": "counseling",
    "counsellor": "counselor",
    "counsellors": "counselors",
    "quarrelled": "quarreled",
    "tunnelled": "tunneled",
    "dialled": "dialed",
    "dialling": "dialing",
    "channelled": "channeled",
    "totalled": "totaled",
    "equalled": "equaled",
    "marvellous": "marvelous",
    "woollen": "woolen",
    "jewellery": "jewelry",
    "fulfil": "fulfill",
    "fulfils": "fulfills",
    "fulfilment": "fulfillment",
    "enrol": "enroll",
    "enrols": "enrolls",
    "enrolment": "enrollment",
    "skilful": "skillful",
    "wilful": "willful",
    "instalment": "installment",
    "instalments": "installments",
    # -ence / -ense
    "defence": "defense",
    "defences": "defenses",
    "offence": "offense",
    "offences": "offenses",
    "licence": "license",
    "licences": "licenses",
    "pretence": "pretense",
    # single words
    "grey": "gray",
    "greys": "grays",
    "greyish": "grayish",
    "tyre": "tire",
    "tyres": "tires",
    "aluminium": "aluminum",
    "programme": "program",
    "programmes": "programs",
    "plough": "plow",
    "ploughs": "plows",
    "mould": "mold",
    "mouldy": "moldy",
    "moustache": "mustache",
    "pyjamas": "pajamas",
    "sceptical": "skeptical",
    "sceptic": "skeptic",
    "draught": "draft",
    "draughts": "drafts",
    "ageing": "aging",
    "judgement": "judgment",
    "judgements": "judgments",
    "acknowledgement": "acknowledgment",
    "cosy": "cozy",
    "practise": "practice",
    "practised": "practiced",
    "practising": "practicing",
    "paediatric": "pediatric",
    "encyclopaedia": "encyclopedia",
    "anaesthetic": "anesthetic",
    "foetus": "fetus",
    "oestrogen": "estrogen",
    "haemoglobin": "hemoglobin",
    "leukaemia": "leukemia",
    "whisky": "whiskey",
    "doughnut": "donut",
    "doughnuts": "donuts",
    "ok": "okay",
}


def _table() -> dict[str, str]:
    table = dict(_WORDS)
    for stem in _OUR:
        us = stem[:-2] + "r"  # colour -> color
        for suffix in _OUR_SUFFIXES:
            table[stem + suffix] = us + suffix
    for stem in _ISE:
        for suffix in _ISE_SUFFIXES:
            table[stem + suffix] = stem[:-1] + "z" + suffix
    for stem in _YSE:
        for suffix in _ISE_SUFFIXES:
            table[stem + suffix] = stem[:-1] + "z" + suffix
    return table


BRITISH_TO_AMERICAN = _table()


def americanise(word: str) -> str:
    """The American spelling of ``word`` (a possessive ``'s`` kept), or ``word`` itself."""
    if word.endswith("'s") and word[:-2] in BRITISH_TO_AMERICAN:
        return BRITISH_TO_AMERICAN[word[:-2]] + "'s"
    return BRITISH_TO_AMERICAN.get(word, word)
