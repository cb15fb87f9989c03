"""English text -> IPA the way the LibriTTS inference notebook does it, with an on-disk cache.

Steps (see ``preprocessing.json`` in the compatibility fixtures): strip, espeak-ng through
``phonemizer`` (en-us, punctuation kept, stress marks), NLTK word tokenisation, re-join with single
spaces. Phonemising is slow (a process round trip per call), so results are cached in SQLite keyed by
the text and every setting that changes the output, including the espeak-ng version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_punkt_warned = False


class _WordCountMismatch(logging.Filter):
    """Keeps phonemizer's "words count mismatch" out of the log (at debug level instead).

    espeak-ng and phonemizer split words differently around punctuation, numbers and contractions. The
    count only matters to callers that re-align words; we keep each text's whole phoneme string, so the
    mismatch changes nothing here and a warning about it would only alarm.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("words count mismatch"):
            log.debug("phonemizer: %s", record.getMessage())
            return False
        return True


_espeak_log = logging.getLogger(f"{__name__}.espeak")
_espeak_log.addFilter(_WordCountMismatch())


def default_cache_dir() -> Path:
    root = os.environ.get("TTS_ADAPT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tts-adapt"
    )
    return Path(root)


def word_tokenize_join(phonemes: str) -> str:
    """NLTK ``word_tokenize`` then join with spaces (punctuation becomes its own token).

    With NLTK's trained 'punkt' data this is exactly the notebook's call. Without it (it cannot be
    downloaded offline) an untrained Punkt sentence splitter is used, which differs only on
    abbreviation-like tokens that do not occur in IPA text; we say so once, at debug level.
    """
    from nltk.tokenize import NLTKWordTokenizer, sent_tokenize
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    global _punkt_warned
    try:
        sentences = sent_tokenize(phonemes)
    except LookupError:
        if not _punkt_warned:
            log.debug("NLTK 'punkt_tab' data not installed; using an untrained Punkt sentence splitter")
            _punkt_warned = True
        sentences = PunktSentenceTokenizer().tokenize(phonemes)
    tok = NLTKWordTokenizer()
    return " ".join(t for s in sentences for t in tok.tokenize(s))


class PhonemeCache:
    """A tiny thread-safe SQLite key/value store; one file shared by every run on the machine."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS phonemes (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                q = f"SELECT key, value FROM phonemes WHERE key IN ({','.join('?' * len(chunk))})"
                out.update(dict(self._db.execute(q, chunk).fetchall()))
        return out

    def put_many(self, items: dict[str, str]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO phonemes VALUES (?, ?)", list(items.items()))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Phonemizer:
    """Cached espeak-ng phonemiser producing StyleTTS 2 input strings.

    ``phonemize(texts)`` returns one IPA string per text. ``cache=False`` disables the disk cache;
    ``cache_path`` overrides its location (default ``$TTS_ADAPT_CACHE/phonemes.sqlite``).
    """

    def __init__(
        self,
        language: str = "en-us",
        cache: bool = True,
        cache_path: str | os.PathLike | None = None,
        word_tokenize: bool = True,
    ) -> None:
        self.language = language
        self.word_tokenize = word_tokenize
        self._backend = None
        self._cache = PhonemeCache(cache_path or default_cache_dir() / "phonemes.sqlite") if cache else None
        self._version: str | None = None

    def _get_backend(self):
        if self._backend is None:
            try:
                from phonemizer.backend import EspeakBackend
            except ImportError as e:  # pragma: no cover - dependency of the package
                raise RuntimeError("the 'phonemizer' package is required for text input") from e
            try:
                self._backend = EspeakBackend(
                    language=self.language, preserve_punctuation=True, with_stress=True, logger=_espeak_log
                )
            except RuntimeError as e:
                raise RuntimeError(
                    "espeak-ng was not found; install it (Debian/Ubuntu: apt-get install espeak-ng, "
                    "macOS: brew install espeak-ng) or pass phonemes directly"
                ) from e
            self._version = ".".join(map(str, self._backend.version()))
        return self._backend

    def settings_key(self) -> str:
        self._get_backend()
        return f"espeak-ng {self._version}|{self.language}|punct|stress|wt={int(self.word_tokenize)}"

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.settings_key()}\n{text}".encode()).hexdigest()

    def phonemize(self, texts: str | Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        stripped = [t.strip() for t in texts]
        keys = [self._key(t) for t in stripped]
        found = self._cache.get_many(keys) if self._cache else {}
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            backend = self._get_backend()
            raw = backend.phonemize([stripped[i] for i in todo], strip=False)
            if len(raw) != len(todo):  # espeak-ng broke a text over lines ("$3.50"): one text at a time
                raw = [" ".join(backend.phonemize([stripped[i]], strip=False)) for i in todo]
            new = {}
            for i, ps in zip(todo, raw):
                out = word_tokenize_join(ps) if self.word_tokenize else ps
                new[keys[i]] = out
            found.update(new)
            if self._cache:
                self._cache.put_many(new)
        return [found[k] for k in keys]

    def __call__(self, text: str) -> str:
        return self.phonemize([text])[0]
