"""Examples -> token ids, one module per example kind (text, supervised, pair, feedback, prompt), on the shared
template encoding of turns.py and the cutoff rule of cutoff.py."""
