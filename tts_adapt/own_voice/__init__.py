"""A person's own voice for Kokoro-82M: their clips checked and transcribed (:mod:`.intake`), the
``own_voice`` recipe run as a background job (:mod:`.jobs`), and what the finished job offers
(:mod:`.results`). The demo's "Your voice" tab is built on these."""
