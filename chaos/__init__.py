"""The chaos suite: a whole Hubbub system under load while processes are killed and its
servers stopped, measured (``python -m chaos [SCENARIO ...]``, ``bin/hubbub chaos``)."""
