//! Policy evaluation: one decision for a 10-criterion policy (email, domain, groups, claim,
//! method, path, source IP, day and time of day) and a user in 200 groups. Target: < 1 µs.
//!
//! Before measuring, it checks that evaluation does not allocate (an instrumented global
//! allocator counts every allocation made during 1,000 decisions of each scenario).
//!
//! Run: `cargo bench --bench policy_eval`.

use std::alloc::System;
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::config::policy::CompiledPolicy;
use portcullis::config::{self, env::MapEnv};
use portcullis::policy::{Input, Outcome};
use portcullis::session::Session;
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Ten criteria: nine in the allow rule, one in the deny rule.
const POLICY: &str = r#"
insecure_server: true
routes:
  - from: https://app.example.com
    to: http://127.0.0.1:9
    policy:
      - allow:
          and:
            - domain: {in: [example.com, example.org]}
            - email: {not_in: [blocked@example.com, former@example.com]}
            - groups: {has: group-150}
            - claim/org.team: {has: core}
            - http_method: {in: [GET, HEAD, POST]}
            - http_path: {starts_with: /api/}
            - source_ip: [192.168.0.0/16, 10.0.0.0/8]
            - day_of_week: {days: mon-fri, timezone: Europe/Berlin}
            - time_of_day: {timezone: Europe/Berlin, after: "07:00", before: "20:00"}
      - deny:
          or:
            - email: {ends_with: "@contractors.example.com"}
"#;

fn policy() -> CompiledPolicy {
    let loaded = config::load_str(POLICY, None, &MapEnv::default()).expect("bench config");
    CompiledPolicy::compile(&loaded.config.routes[0].access)
}

fn user(email: &str) -> Session {
    let mut groups: Vec<String> = (0..200).map(|i| format!("group-{i}")).collect();
    groups.sort();
    let serde_json::Value::Object(claims) = json!({
        "sub": "00u1",
        "email": email,
        "org": {"team": ["platform", "core", "infra"]},
    }) else {
        unreachable!("an object literal")
    };
    Session::hypothetical("00u1".into(), Some(email.into()), groups, claims)
}

/// Wednesday 2024-05-15 10:30:00 UTC, 12:30 in Berlin.
const NOW: u64 = 1_715_769_000;

fn bench(c: &mut Criterion) {
    let policy = policy();
    let alice = user("Alice@Example.com");
    let contractor = user("dan@contractors.example.com");
    let method = http::Method::GET;
    let ip: IpAddr = "10.1.2.3".parse().expect("ip");
    let input = |user: Option<&'static Session>| Input {
        user,
        method: &method,
        path: "/api/v1/items/42",
        client_ip: ip,
        cors_preflight: false,
        now: NOW,
    };
    // 'static users so the inputs can be built once, outside the timed loops.
    let alice: &'static Session = Box::leak(Box::new(alice));
    let contractor: &'static Session = Box::leak(Box::new(contractor));
    let outsider: &'static Session = Box::leak(Box::new(user("eve@elsewhere.example")));
    let scenarios = [
        (
            "allowed_all_criteria_true",
            input(Some(alice)),
            Outcome::Allow,
        ),
        (
            "denied_by_deny_rule",
            input(Some(contractor)),
            Outcome::Deny,
        ),
        ("anonymous_sign_in", input(None), Outcome::SignIn),
        // No allow rule held: the reason names the first allow rule and its failing
        // criterion, still without allocating.
        (
            "denied_no_allow_rule_held",
            input(Some(outsider)),
            Outcome::Deny,
        ),
    ];

    for (name, input, want) in &scenarios {
        assert_eq!(policy.evaluate(input).outcome, *want, "{name}");
        let region = Region::new(GLOBAL);
        for _ in 0..1_000 {
            black_box(policy.evaluate(black_box(input)));
        }
        let stats = region.change();
        assert_eq!(
            (stats.allocations, stats.reallocations),
            (0, 0),
            "{name}: evaluate allocated"
        );
    }

    let mut g = c.benchmark_group("policy_eval_10_criteria_200_groups");
    for (name, input, _) in &scenarios {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(policy.evaluate(black_box(input))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
