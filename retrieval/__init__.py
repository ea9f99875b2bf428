"""Feature layer, Transformer query tower, item tower, training, evaluation and export."""
