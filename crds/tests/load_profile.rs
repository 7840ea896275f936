//! The load profile math: durations, rates at offsets, expected record counts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use barrage_crds::duration::HumanDuration;
use barrage_crds::spec::{ConstantStep, LoadSpec, LoadStep, RampStep, StaircaseStep};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn constant(rate: f64, s: u64) -> LoadStep {
    LoadStep::Constant(ConstantStep {
        rate,
        duration: HumanDuration::from_secs(s),
    })
}

fn ramp(from: f64, to: f64, s: u64) -> LoadStep {
    LoadStep::Ramp(RampStep {
        from,
        to,
        over: HumanDuration::from_secs(s),
    })
}

fn stairs(start: f64, step: f64, every: u64, until: f64) -> LoadStep {
    LoadStep::Staircase(StaircaseStep {
        start,
        step,
        every: HumanDuration::from_secs(every),
        until,
    })
}

fn load(steps: Vec<LoadStep>, duration: Option<u64>) -> LoadSpec {
    LoadSpec {
        steps,
        duration: duration.map(HumanDuration::from_secs),
        max_duration: None,
        warmup: None,
    }
}

#[test]
fn constant_load_sends_rate_times_duration() {
    let l = load(vec![constant(1000.0, 10)], None);
    assert_eq!(l.total_duration(), secs(10));
    assert_eq!(l.rate_at(secs(0)), 1000.0);
    assert_eq!(l.rate_at(ms(9_999)), 1000.0);
    assert_eq!(l.rate_at(secs(10)), 0.0, "no load after the end");
    assert_eq!(l.expected_records(), 10_000);
    assert_eq!(l.effective_max_duration(), secs(10 + 300));
}

#[test]
fn ramp_is_linear_and_its_integral_is_the_trapezoid() {
    let l = load(vec![ramp(0.0, 5000.0, 60)], None);
    assert_eq!(l.rate_at(secs(0)), 0.0);
    assert_eq!(l.rate_at(secs(30)), 2500.0);
    assert_eq!(l.rate_at(secs(45)), 3750.0);
    assert_eq!(l.expected_records(), 150_000);
}

#[test]
fn staircase_climbs_and_clamps_the_last_stair() {
    // 100, 400, 700, 1000 (clamped from 1000) — four stairs of 30 s.
    let s = stairs(100.0, 300.0, 30, 1000.0);
    let l = load(vec![s.clone()], None);
    assert_eq!(l.total_duration(), secs(120));
    assert_eq!(l.rate_at(secs(0)), 100.0);
    assert_eq!(l.rate_at(secs(31)), 400.0);
    assert_eq!(l.rate_at(secs(119)), 1000.0);
    assert_eq!(l.expected_records(), (100 + 400 + 700 + 1000) * 30);
    // 100, 500, 900, 1000: the last stair is clamped to `until`.
    let l = load(vec![stairs(100.0, 400.0, 10, 1000.0)], None);
    assert_eq!(l.total_duration(), secs(40));
    assert_eq!(l.rate_at(secs(35)), 1000.0);
    assert_eq!(l.expected_records(), (100 + 500 + 900 + 1000) * 10);
}

#[test]
fn steps_play_in_order() {
    let l = load(
        vec![
            ramp(0.0, 1000.0, 10),
            constant(1000.0, 20),
            ramp(1000.0, 0.0, 10),
        ],
        None,
    );
    assert_eq!(l.total_duration(), secs(40));
    assert_eq!(l.rate_at(secs(5)), 500.0);
    assert_eq!(l.rate_at(secs(10)), 1000.0);
    assert_eq!(l.rate_at(secs(35)), 500.0);
    assert_eq!(l.expected_records(), 5_000 + 20_000 + 5_000);
    assert_eq!(l.peak_rate(), 1000.0);
}

#[test]
fn a_longer_duration_holds_the_last_rate() {
    let l = load(vec![ramp(0.0, 100.0, 10)], Some(30));
    assert_eq!(l.total_duration(), secs(30));
    assert_eq!(l.rate_at(secs(20)), 100.0);
    assert_eq!(l.expected_records(), 500 + 2000);
}

#[test]
fn a_shorter_duration_cuts_the_load() {
    let l = load(
        vec![constant(10.0, 10), constant(1_000_000.0, 10)],
        Some(10),
    );
    assert_eq!(l.total_duration(), secs(10));
    assert_eq!(l.expected_records(), 100);
    assert_eq!(
        l.peak_rate(),
        10.0,
        "a step that never plays does not count"
    );
    let l = load(vec![ramp(0.0, 100.0, 10)], Some(5));
    assert_eq!(l.expected_records(), 125);
    assert_eq!(l.peak_rate(), 50.0);
}

#[test]
fn fractional_rates_round_down() {
    let l = load(vec![constant(0.5, 3)], None);
    assert_eq!(l.expected_records(), 1);
    let l = load(vec![constant(333.3, 3)], None);
    assert_eq!(l.expected_records(), 999);
}

#[test]
fn empty_or_degenerate_loads_do_not_panic() {
    let l = load(vec![], None);
    assert_eq!(l.total_duration(), Duration::ZERO);
    assert_eq!(l.rate_at(secs(1)), 0.0);
    assert_eq!(l.expected_records(), 0);
    let l = load(vec![stairs(f64::NAN, -1.0, 0, f64::INFINITY)], Some(10));
    let _ = l.rate_at(secs(1));
    let _ = l.expected_records();
    let l = load(vec![constant(f64::MAX, u64::MAX / 2)], None);
    assert_eq!(l.expected_records(), u64::MAX);
}
