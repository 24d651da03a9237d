"""From NIfTI files to training and test data: reading and writing volumes, the k-space
degradation, the sample volumes, data set manifests, the degraded-volume cache and the
streaming training pipeline (docs/data.md)."""
