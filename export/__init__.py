"""shadematch offline stage: model export, catalogue indexing and bundle writing (extra `export`)."""
