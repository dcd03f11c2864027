//! Tests for compilation's static facts (`can_never_allow`, `mentioned_groups`,
//! `uses_groups`), worked out before any request, and for the example files in `policies/`:
//! each parses without a problem and compiles. That the facts agree with evaluation, and that
//! the legacy fields and the examples decide as they say, is tested in stage 4.

use super::*;

#[test]
fn can_never_allow_spots_dead_routes() {
    assert!(CompiledPolicy::compile(&Access::default()).can_never_allow());
    let rows = [
        ("allow: {or: [reject: 1]}", true),
        ("allow: {and: [accept: 1, reject: 1]}", true),
        ("allow: {not: [accept: 1]}", true),
        ("allow: {nor: [accept: 1]}", true),
        ("deny: {or: [source_ip: 10.0.0.0/8]}", true),
        ("allow: {or: [accept: 1]}\ndeny: {or: [accept: 1]}", true),
        ("allow: {or: [accept: 1]}\ndeny: {not: [reject: 1]}", true),
        ("allow: {or: [accept: 1]}", false),
        ("allow: {or: [reject: 1, email: a@b.c]}", false),
        ("allow: {not: [reject: 1]}", false),
        ("allow: {or: [accept: 1]}\ndeny: {or: [user: bad]}", false),
        (
            "allow: {and: [authenticated_user: 1, {not: [user: x]}]}",
            false,
        ),
    ];
    for (yaml, want) in rows {
        assert_eq!(ppl(yaml).can_never_allow(), want, "{yaml}");
    }
    assert!(!CompiledPolicy::compile(&route("allowed_users: [a]")).can_never_allow());
}

#[test]
fn mentioned_groups_come_from_groups_criteria_and_allowed_groups() {
    let access = route(
        "allowed_groups: [b, a]\n\
         policy:\n\
        \x20 allow: {or: [groups: c, groups: {is: a}], not: [groups: {exclude: d}]}\n\
        \x20 deny: {or: [claim/groups: e]}",
    );
    let p = CompiledPolicy::compile(&access);
    assert_eq!(p.mentioned_groups(), ["a", "b", "c", "d"]);
    assert!(p.uses_groups());
    assert!(
        ppl("allow: {or: [accept: 1]}")
            .mentioned_groups()
            .is_empty()
    );
}

#[test]
fn uses_groups_only_when_groups_can_change_the_outcome() {
    let rows = [
        ("allow: {or: [groups: eng]}", true),
        (
            "allow: {and: [domain: a.org, {not: [groups: contractors]}]}",
            true,
        ),
        (
            "allow: {or: [accept: 1]}\ndeny: {or: [groups: suspended]}",
            true,
        ),
        (
            "allow: {or: [reject: 1]}\ndeny: {or: [groups: suspended]}",
            false,
        ),
        ("allow: {or: [claim/groups: eng]}", false),
        ("allow: {or: [accept: 1, groups: eng]}", false),
        ("allow: {or: [groups: eng]}\ndeny: {or: [accept: 1]}", false),
    ];
    for (yaml, want) in rows {
        assert_eq!(ppl(yaml).uses_groups(), want, "{yaml}");
    }
    assert!(CompiledPolicy::compile(&route("allowed_groups: [eng]")).uses_groups());
    assert!(!CompiledPolicy::compile(&route("allowed_domains: [a.org]")).uses_groups());
}

#[test]
fn every_example_in_policies_parses_and_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("policies/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let node = crate::config::yaml::parse(&text).expect("valid YAML");
        let mut problems = Problems::new();
        let policy = parse_policy(&node, "", &mut problems);
        assert!(
            problems.errors().is_empty() && problems.warnings().is_empty(),
            "{}: {:?} {:?}",
            path.display(),
            problems.errors(),
            problems.warnings()
        );
        let policy = policy.expect("no problems means a policy");
        let access = Access {
            policy_files: vec![(path.clone(), policy)],
            ..Access::default()
        };
        let _ = CompiledPolicy::compile(&access);
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    let want = [
        "admins-write.yaml",
        "engineering.yaml",
        "no-contractors.yaml",
        "office-hours.yaml",
    ];
    assert_eq!(names, want);
}
