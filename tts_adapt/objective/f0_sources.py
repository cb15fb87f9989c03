"""The names of the F0 sources, apart from the trackers themselves, so that a command's ``--help`` lists
them without importing torch."""

F0_SOURCES = ("jdc", "pyin", "yin", "yin-hs")  # where the trainer's F0 targets come from
TRACKERS = ("yin", "pyin", "yin-hs")  # the DSP trackers among them (pre-training has no JDC)
