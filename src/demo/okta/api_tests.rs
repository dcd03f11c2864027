// Test-only: included from its parent module under #[cfg(test)].
//! The mock org answering in-process, as the demo provider serves it.

use super::*;
use crate::demo::users;

/// The demo's org: its users' groups, two a page.
fn demo_org() -> OktaOrg {
    let org = OktaOrg::new(Some("tok"));
    org.set_page_size(2);
    for user in users::all() {
        let groups = user.directory_groups();
        let pairs: Vec<(&str, &str)> = groups
            .iter()
            .map(|g| (g.id.as_str(), g.name.as_str()))
            .collect();
        org.set_groups(user.sub, &pairs);
    }
    org
}

async fn get(org: &OktaOrg, path: &str, auth: Option<&str>) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(a) = auth {
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
    }
    let uri: http::Uri = path.parse().unwrap();
    org.answer(&Method::GET, &uri, &headers, "http://127.0.0.1:9101")
        .await
}

async fn body(r: Reply) -> serde_json::Value {
    use http_body_util::BodyExt as _;
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn needs_the_token() {
    let org = demo_org();
    let path = "/api/v1/users/00udemobob/groups";
    let r = get(&org, path, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["errorCode"], "E0000011");
    assert_eq!(get(&org, path, Some("SSWS nope")).await.status(), 401);
    assert_eq!(get(&org, path, Some("Bearer tok")).await.status(), 401);
    let nobody = "/api/v1/users/nobody/groups";
    assert_eq!(get(&org, nobody, Some("SSWS tok")).await.status(), 404);
    let without = OktaOrg::new(None);
    assert_eq!(get(&without, path, Some("SSWS ")).await.status(), 401);
}

#[tokio::test]
async fn pages_follow_next_links_to_the_end() {
    let org = demo_org();
    let mut path = "/api/v1/users/00udemocarol/groups?limit=200".to_owned();
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = get(&org, &path, Some("SSWS tok")).await;
        assert_eq!(r.status(), 200);
        let next = r
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches("<http://127.0.0.1:9101")
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            });
        for g in body(r).await.as_array().unwrap() {
            names.push(g["profile"]["name"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match next {
            Some(n) => path = n,
            None => break,
        }
    }
    assert_eq!(pages, 15);
    assert_eq!(names, users::find(&users::all(), "carol").unwrap().groups);
    let garbled = "/api/v1/users/00udemocarol/groups?after=00gx";
    assert_eq!(get(&org, garbled, Some("SSWS tok")).await.status(), 400);
}
