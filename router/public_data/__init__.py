"""Public, licensed customer text (Banking77, CLINC150) and the unlicensed zh_shopping reviews kefu only evaluates on.

``sources`` reads them from the shared data folder, ``mapping`` says what each source label means to kefu
(data/public/mapping.yml), ``split`` keeps near-copies on one side, and ``sides`` writes the training side into
data/public and finds the held-out side that benchmarks judge the models on.
"""
