"""Title generation with bidirectional decoding (kexue.fm post 6877)."""
