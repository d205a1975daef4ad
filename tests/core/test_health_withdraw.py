"""#20.2: the overfitting warning is withdrawn when the validation loss beats the warned best, and noise near zero
(relative and absolute) is not a rise."""

from __future__ import annotations

from test_health import _feed

from nnstudio.core.training.health import OverfitWatch


def test_a_later_best_withdraws_the_warning_and_the_end_holds_none():
    warned, withdrawn = [], []
    watch = OverfitWatch(patience=3, on_warning=warned.append, on_withdrawn=lambda w, e: withdrawn.append((w, e)))
    val = [0.9, 0.7, 0.5, 0.6, 0.65, 0.7, 0.45, 0.4, 0.38, 0.37]  # risen after epoch 3, then far better
    _feed(watch, [(1.0 - 0.05 * i, v) for i, v in enumerate(val)])
    assert [(w.epoch, w.best_epoch) for w in warned] == [(6, 3)]
    assert [(w.best_epoch, epoch) for w, epoch in withdrawn] == [(3, 7)]
    assert watch.active is None  # nothing holds at the end: the best epoch is the last


def test_changes_within_noise_near_zero_are_no_rise():
    watch = OverfitWatch(patience=3)
    val = [0.01, 0.003, 0.001033, 0.001331, 0.0012, 0.0013, 0.00125]  # +29% but 0.0003 in absolute terms
    _feed(watch, [(1.0 - 0.1 * i, v) for i, v in enumerate(val)])
    assert watch.warnings == []
    clear = OverfitWatch(patience=3)
    _feed(clear, [(1.0 - 0.1 * i, v) for i, v in enumerate([0.5, 0.2, 0.1, 0.12, 0.13, 0.15])])
    assert [w.best_epoch for w in clear.warnings] == [3]  # a real rise still warns
