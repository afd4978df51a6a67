"""``fp4stack doctor CHECKPOINT``: detect a low-bit checkpoint's format, validate its tensors
against it from the safetensors headers (and only the small tensors a check needs), and say
which consumers load it and which need one of fp4stack's patches."""
