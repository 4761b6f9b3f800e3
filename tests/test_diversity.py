"""The sample-diversity measure: a digit classifier, and the labels of where Gibbs chains end."""

from __future__ import annotations

import torch
from mnist_fakes import fake_digits

from recsys_rbm.exercise.diversity import DigitClassifier, DiversityReport, chain_diversity, fit_digit_classifier
from recsys_rbm.rbm.model import RBM
from recsys_rbm.rbm.rng import UniformStream
from recsys_rbm.rbm.units import BernoulliUnits


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = fake_digits(n, seed)
    return torch.from_numpy(images.reshape(n, -1)).float() / 255, torch.from_numpy(labels).long()


def test_the_classifier_learns_digits_it_was_not_shown():
    train, train_labels = _images(300, 0)
    test, test_labels = _images(100, 1)
    classifier = fit_digit_classifier(train, train_labels)
    assert classifier.accuracy(test, test_labels) > 0.95
    again = fit_digit_classifier(train, train_labels)
    assert torch.equal(again.weights, classifier.weights)  # deterministic


def test_a_model_with_one_mode_sends_every_chain_to_one_digit():
    """An RBM whose visible biases draw one pattern: whatever the start, the chains end on its digit."""
    images, labels = _images(300, 0)
    classifier = fit_digit_classifier(images, labels)
    pattern = images[labels == 3][0]
    bias = (pattern - 0.5) * 40  # p(v|h) ≈ the pattern, whatever h
    rbm = RBM(torch.zeros(784, 5), bias, torch.zeros(5), BernoulliUnits(784))
    report = chain_diversity(rbm, images[:40], classifier, steps=3, random=UniformStream(0))
    assert report.counts[3] == 40 and report.largest_share == 1.0 and report.n_classes == 1
    assert report.n_chains == 40 and report.steps == 3


def test_report_shares():
    report = DiversityReport([10, 30, 0, 0, 0, 20, 0, 20, 10, 10], steps=1000)
    assert report.n_chains == 100 and report.largest_share == 0.3 and report.n_classes == 6
    assert report.shares[5] == 0.2
    assert report.as_dict()["counts"] == report.counts


def test_prediction_is_the_most_probable_class():
    classifier = DigitClassifier(torch.eye(3, 10), torch.zeros(10))
    assert classifier.predict(torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])).tolist() == [1, 0]
