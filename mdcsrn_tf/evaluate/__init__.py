"""From super-resolved volumes to the paper's figures: metrics, scoring of baselines and
networks on test subjects, result files, the notebooks' tables and Figure-2 images."""
