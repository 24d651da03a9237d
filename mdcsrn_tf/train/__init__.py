"""From a data set to trained weights: the settings (config.py), the losses and GAN
schedule of the paper, the tf.function steps, the loop with its checkpoints, validation
and TensorBoard summaries (docs/training.md)."""
