"""Client order flow: a deterministic order-command generator (:mod:`.simulator`) and its publisher (:mod:`.publish`)."""
