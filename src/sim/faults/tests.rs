//! Which calls each fault knob selects, and the management token bucket.

use super::*;
use crate::sim::RateLimitFault;
use crate::sim::after_effect::{AfterEffect, Counted, DeleteAnswer};

fn limited(endpoint: &str, count: u32, secs: u64) -> Faults {
    let fault = RateLimitFault {
        count,
        retry_after_secs: secs,
    };
    Faults {
        rate_limit: [(endpoint.to_string(), fault)].into(),
        ..Faults::default()
    }
}

#[test]
fn rate_limit_answers_429_for_exactly_the_configured_count() {
    let mut state = FaultState::new(limited("chat", 2, 7));
    let limited = Injected::RateLimited {
        retry_after_secs: 7,
    };
    assert_eq!(state.decide(Endpoint::Chat), limited);
    assert_eq!(state.decide(Endpoint::List), Injected::None);
    assert_eq!(state.decide(Endpoint::Chat), limited);
    assert_eq!(state.decide(Endpoint::Chat), Injected::None);
}

#[test]
fn star_applies_to_endpoints_without_their_own_knob() {
    let mut faults = limited("*", 1, 3);
    faults.latency_ms = [("*".to_string(), 5), ("get".to_string(), 9)].into();
    let mut state = FaultState::new(faults);
    assert_eq!(state.latency(Endpoint::Get), Duration::from_millis(9));
    assert_eq!(state.latency(Endpoint::Delete), Duration::from_millis(5));
    assert_eq!(
        state.decide(Endpoint::Models),
        Injected::RateLimited {
            retry_after_secs: 3
        }
    );
    assert_eq!(state.decide(Endpoint::Create), Injected::None);
}

#[test]
fn the_management_bucket_admits_n_a_second_then_answers_429_until_a_token_is_due() {
    let mut state = FaultState::new(Faults {
        management_rate_per_sec: Some(4),
        ..Faults::default()
    });
    let t0 = Instant::now();
    let endpoints = [
        Endpoint::Create,
        Endpoint::List,
        Endpoint::Get,
        Endpoint::Delete,
    ];
    for endpoint in endpoints {
        assert_eq!(state.decide_at(endpoint, t0), Injected::None);
    }
    let limited = Injected::RateLimited {
        retry_after_secs: 1,
    };
    assert_eq!(state.decide_at(Endpoint::Update, t0), limited);
    // Calls made with a key are never paced.
    assert_eq!(state.decide_at(Endpoint::Chat, t0), Injected::None);
    assert_eq!(state.decide_at(Endpoint::Whoami, t0), Injected::None);
    // A quarter second later one token is back, and only one.
    let later = t0 + Duration::from_millis(250);
    assert_eq!(state.decide_at(Endpoint::Get, later), Injected::None);
    assert_eq!(state.decide_at(Endpoint::Get, later), limited);
    assert_eq!(state.throttled(), 2);
}

#[test]
fn error_rate_of_one_always_fails_and_zero_never_does() {
    let faults = Faults {
        error_rate: [("create".to_string(), 1.0), ("list".to_string(), 0.0)].into(),
        ..Faults::default()
    };
    let mut state = FaultState::new(faults);
    for _ in 0..20 {
        assert_eq!(state.decide(Endpoint::Create), Injected::ServerError);
        assert_eq!(state.decide(Endpoint::List), Injected::None);
    }
}

fn after(after_effect: AfterEffect) -> FaultState {
    FaultState::new(Faults {
        after_effect,
        ..Faults::default()
    })
}

#[test]
fn a_counted_after_effect_meets_exactly_the_next_count_calls() {
    let mut state = after(AfterEffect {
        create: Some(Counted::next(2, CreateAnswer::Html)),
        delete: Some(Counted::next(1, DeleteAnswer::NotFound)),
        ..AfterEffect::default()
    });
    let html = Some(CreateAnswer::Html);
    assert_eq!([(); 3].map(|_| state.after_create()), [html, html, None]);
    assert_eq!([(); 2].map(|_| state.after_delete()), [true, false]);
}

#[test]
fn an_uncounted_after_effect_never_runs_out_and_no_knob_never_fires() {
    let mut state = after(AfterEffect {
        create: Some(Counted::always(CreateAnswer::MissingId)),
        ..AfterEffect::default()
    });
    for _ in 0..50 {
        assert_eq!(state.after_create(), Some(CreateAnswer::MissingId));
        assert!(!state.after_delete());
    }
}

#[test]
fn a_listing_is_counted_once_at_its_first_page_and_its_pages_follow_it() {
    let mut state = after(AfterEffect {
        list: Some(Counted::next(1, ListAnswer::Endless)),
        ..AfterEffect::default()
    });
    let first = state.listing(Api::OpenRouter, true, 3);
    let second = state.listing(Api::OpenRouter, false, 3);
    assert_eq!(
        (first.answer, first.phantoms),
        (Some(ListAnswer::Endless), 0..3)
    );
    assert_eq!(
        (second.answer, second.phantoms),
        (Some(ListAnswer::Endless), 3..6)
    );
    let other_api = state.listing(Api::LiteLlm, true, 3);
    assert_eq!((other_api.answer, other_api.phantoms), (None, 6..6));
    let again = state.listing(Api::OpenRouter, true, 3);
    assert_eq!(again.answer, None);
    assert_eq!(state.listing(Api::OpenRouter, false, 3).answer, None);
}

#[test]
fn out_of_range_error_rates_do_not_panic() {
    let faults = Faults {
        error_rate: [("get".to_string(), 7.0), ("chat".to_string(), f64::NAN)].into(),
        ..Faults::default()
    };
    let mut state = FaultState::new(faults);
    assert_eq!(state.decide(Endpoint::Get), Injected::ServerError);
    assert_eq!(state.decide(Endpoint::Chat), Injected::None);
}
