"""Model-judged evaluation: rubrics, reading the judge's replies, the reply cache, single scores and pairwise
comparison, and the calls to the judge (an OpenAI-compatible endpoint or a local model). The `judge` task kind
(tunelab.eval.kinds.judge) wires them into `tunelab eval`."""
