"""CCKS2019 entity linking (kexue.fm/archives/6919): alias max-matching candidates, behaviour
modelling (annotator-statistics pruning), a joint NER + binary-matching model, and the metric."""
