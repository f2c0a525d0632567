"""Descriptor -> matches: the index (hnswlib or exact), the title map, the product vote and Algorithm 1."""
