"""From a trained generator to a SavedModel that TF Serving and the C++/Java APIs load."""
