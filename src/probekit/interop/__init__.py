"""Checkpoint interop: released checkpoints read into torch modules, key by key. CTranslate2's
faster-whisper models as transformers' Whisper (:mod:`.ct2_whisper`); the released SALMONN and
BEATs files, by key map (:mod:`.salmonn`). Model families use these readers; nothing here knows
about wrappers or recording."""
