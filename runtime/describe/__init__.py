"""Photo -> descriptor: decoding, the model card, the backend's run, SR-MAC pooling (eqs. 4-7), the bundle's projection."""
