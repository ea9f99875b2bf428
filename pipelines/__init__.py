"""Apache Beam pipeline: raw event logs -> labelled, time-ordered, split sequences."""
