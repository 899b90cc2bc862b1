#!/usr/bin/env python3
"""Unit tests of bench/stats.py: intervals and verdicts (registered in ctest as bench_stats)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats  # noqa: E402


class RatioCi(unittest.TestCase):
    def test_point_is_ratio_of_medians(self):
        point, low, high = stats.ratio_ci([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
        self.assertAlmostEqual(point, 2.0)
        self.assertLessEqual(low, point)
        self.assertGreaterEqual(high, point)

    def test_identical_runs_give_a_zero_width_interval(self):
        point, low, high = stats.ratio_ci([3.0] * 5, [2.0] * 5)
        self.assertEqual((point, low, high), (1.5, 1.5, 1.5))

    def test_noise_widens_the_interval(self):
        quiet = stats.ratio_ci([10.0, 10.1, 9.9, 10.0, 10.05], [5.0] * 5)
        noisy = stats.ratio_ci([6.0, 14.0, 9.0, 12.0, 8.0], [5.0] * 5)
        self.assertLess(quiet[2] - quiet[1], noisy[2] - noisy[1])
        self.assertLess(noisy[1], 2.0)
        self.assertGreater(noisy[2], 2.0)

    def test_paired_resampling_cancels_shared_drift(self):
        # Both variants drift together from run to run (a shared noisy machine): the ratio is 2 in
        # every run, so the paired interval is exactly 2.
        den = [1.0, 3.0, 2.0, 5.0, 4.0]
        point, low, high = stats.ratio_ci([2 * d for d in den], den)
        self.assertAlmostEqual(low, 2.0)
        self.assertAlmostEqual(high, 2.0)

    def test_reproducible(self):
        a, b = [1.0, 1.4, 0.8, 1.2], [1.0, 1.1, 0.9, 1.3]
        self.assertEqual(stats.ratio_ci(a, b), stats.ratio_ci(a, b))


class MedianCi(unittest.TestCase):
    def test_interval_holds_the_median(self):
        values = [10.0, 11.0, 9.5, 30.0, 10.2, 10.1, 9.9, 10.4, 12.0, 10.0]
        point, low, high = stats.median_ci(values)
        self.assertAlmostEqual(point, 10.15)
        self.assertLessEqual(low, point)
        self.assertGreaterEqual(high, point)
        self.assertLess(high, 30.0)  # one outlier does not drag the median's interval

    def test_one_value_and_constant_values(self):
        self.assertEqual(stats.median_ci([4.0]), (4.0, 4.0, 4.0))
        self.assertEqual(stats.median_ci([4.0] * 6), (4.0, 4.0, 4.0))

    def test_more_repetitions_narrow_it(self):
        few = [1.0, 2.0, 3.0, 4.0, 5.0]
        many = few * 20
        f, m = stats.median_ci(few), stats.median_ci(many)
        self.assertLess(m[2] - m[1], f[2] - f[1])

    def test_reproducible_and_empty(self):
        self.assertEqual(stats.median_ci([1.0, 3.0, 2.0]), stats.median_ci([1.0, 3.0, 2.0]))
        with self.assertRaises(ValueError):
            stats.median_ci([])


class Verdict(unittest.TestCase):
    def test_at_least(self):
        self.assertEqual(stats.verdict(1.6, 1.8, 1.5, ">=", 5), "pass")
        self.assertEqual(stats.verdict(1.2, 1.4, 1.5, ">=", 5), "miss")
        self.assertEqual(stats.verdict(1.4, 1.6, 1.5, ">=", 5), "inconclusive")

    def test_at_most(self):
        self.assertEqual(stats.verdict(0.7, 0.85, 0.9, "<=", 5), "pass")
        self.assertEqual(stats.verdict(0.95, 1.1, 0.9, "<=", 5), "miss")
        self.assertEqual(stats.verdict(0.85, 0.95, 0.9, "<=", 5), "inconclusive")

    def test_too_few_runs_is_never_a_verdict(self):
        self.assertEqual(stats.verdict(3.0, 3.0, 1.5, ">=", 2), "inconclusive")
        self.assertEqual(stats.verdict(0.1, 0.1, 1.5, ">=", 1), "inconclusive")

    def test_target_entry(self):
        t = stats.ratio_target("x", [2.0, 2.1, 1.9, 2.0], [1.0, 1.0, 1.0, 1.0], 1.5, ">=")
        self.assertEqual(t["verdict"], "pass")
        self.assertEqual(t["runs"], 4)
        self.assertLessEqual(t["ci95"][0], t["measured"])
        self.assertGreater(t["spread"]["variant"]["range_rel"], 0)
        one = stats.ratio_target("x", [2.0], [1.0], 1.5, ">=")
        self.assertEqual(one["verdict"], "inconclusive")


if __name__ == "__main__":
    unittest.main()
