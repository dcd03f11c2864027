//! Route matching with 10,000 routes: 1,000 hosts with 10 routes each.
//!
//! Run: `cargo bench --bench route_match`. Results are recorded in benches/README.md.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::config::{self, env::MapEnv};
use portcullis::routes::{RouteTable, request};

const HOSTS: usize = 1_000;
const PER_HOST: usize = 10;

fn table() -> RouteTable {
    let mut yaml = String::from("insecure_server: true\nroutes:\n");
    for h in 0..HOSTS {
        for r in 0..PER_HOST {
            // Most specific first, as operators write them; the last one is the catch-all.
            let matcher = match r {
                9 => String::new(),
                8 => format!(", regex: '/v[0-9]+/item-{h}/.*'"),
                _ => format!(", prefix: /section-{r}/"),
            };
            yaml.push_str(&format!(
                "  - {{from: https://app-{h}.example.com{matcher}, to: http://127.0.0.1:9, allow_public_unauthenticated_access: true}}\n"
            ));
        }
    }
    let loaded = config::load_str(&yaml, None, &MapEnv::default()).expect("bench config");
    RouteTable::new(loaded.config.routes)
}

fn bench(c: &mut Criterion) {
    let table = table();
    assert_eq!(table.routes().len(), HOSTS * PER_HOST);
    let mut g = c.benchmark_group("route_match_10k");
    g.bench_function("first_route_on_host", |b| {
        b.iter(|| {
            black_box(table.find(
                black_box("app-517.example.com"),
                None,
                black_box("/section-0/x"),
            ))
        })
    });
    g.bench_function("regex_route_on_host", |b| {
        b.iter(|| {
            black_box(table.find(
                black_box("app-517.example.com"),
                None,
                black_box("/v2/item-517/x"),
            ))
        })
    });
    g.bench_function("catch_all_last_on_host", |b| {
        b.iter(|| {
            black_box(table.find(
                black_box("app-517.example.com"),
                None,
                black_box("/other/page"),
            ))
        })
    });
    g.bench_function("unknown_host", |b| {
        b.iter(|| black_box(table.find(black_box("nope.example.com"), None, black_box("/"))))
    });
    let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
    let req = http::Request::get("/section-3/a/./b/../c?x=1")
        .header("host", "App-517.Example.com")
        .body(())
        .expect("req");
    g.bench_function("canonical_view_and_match", |b| {
        b.iter(|| {
            let view = request::view(black_box(&req), true, peer, &[]).expect("view");
            black_box(
                table
                    .find(&view.host, view.port, &view.path)
                    .map(|r| r.spec.id),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
