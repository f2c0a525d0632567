"""EAST text detector training: synthetic data, PP-OCR pseudo-labels, targets, losses, training."""
