"""From a trained generator and a NIfTI scan to a super-resolved NIfTI scan: tiling, tiled
inference, and the file-level work of mdcsrn-sr."""
