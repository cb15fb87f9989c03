"""tts-adapt: adapt a pre-trained multi-speaker StyleTTS 2 to a new speaker without forgetting."""

__version__ = "0.1.0"
