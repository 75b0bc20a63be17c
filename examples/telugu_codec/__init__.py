"""An example Telugu speech codec built from ``rvq_blocks`` and trained end to end."""
