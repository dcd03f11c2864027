//! The demo directory: three made-up people and their Okta-style groups — demo
//! companion data, never on the proxy's request path.
//!
//! The demo OpenID Provider signs them in (no password) and the demo Okta Management
//! API lists their groups. Subjects (`00u…`) and group ids (`00g…`) look like Okta's so
//! the identity headers read like production ones; group ids are derived from the
//! group name, so they are the same on every run.

/// One demo user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoUser {
    /// The login name shown on the sign-in page (`alice`).
    pub login: &'static str,
    /// The subject (`sub`), an Okta-style user id.
    pub sub: &'static str,
    /// The display name (`name` claim).
    pub name: &'static str,
    /// The email address (`email` claim).
    pub email: &'static str,
    /// Who this user is, in a few words, for the sign-in page and the banner.
    pub role: &'static str,
    /// Group names, in the order the directory lists them.
    pub groups: Vec<String>,
    /// What the user can reach with the shipped `examples/demo.yaml`.
    pub reach: &'static str,
}

/// An Okta group: its id and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// `00g…`, stable across runs.
    pub id: String,
    /// `profile.name`.
    pub name: String,
}

impl DemoUser {
    /// The user's groups with their ids.
    pub fn directory_groups(&self) -> Vec<Group> {
        self.groups.iter().map(|name| group(name)).collect()
    }
}

/// The group called `name`, with its derived id.
pub fn group(name: &str) -> Group {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hex: String = digest.as_ref()[..9]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Group {
        id: format!("00g{}", &hex[..17]),
        name: name.to_owned(),
    }
}

/// Every demo user: `alice` (admin), `bob` (ordinary), `carol` (in 30 groups).
pub fn all() -> Vec<DemoUser> {
    let mut carol_groups = vec!["engineering".to_owned(), "staff".to_owned()];
    carol_groups.extend((1..=28).map(|i| format!("project-{i:02}")));
    vec![
        DemoUser {
            login: "alice",
            sub: "00udemoalice",
            name: "Alice Admin",
            email: "alice@demo.example",
            role: "administrator",
            groups: vec!["admins".into(), "engineering".into()],
            reach: "every route: public, app, admin and eng",
        },
        DemoUser {
            login: "bob",
            sub: "00udemobob",
            name: "Bob Ordinary",
            email: "bob@demo.example",
            role: "ordinary user",
            groups: vec!["staff".into()],
            reach: "public and app; access denied (403) on admin and eng",
        },
        DemoUser {
            login: "carol",
            sub: "00udemocarol",
            name: "Carol Many-Groups",
            email: "carol@demo.example",
            role: "engineer in 30 groups",
            groups: carol_groups,
            reach: "public, app and eng; 403 on admin",
        },
    ]
}

/// The user with this login name, subject or email address.
pub fn find<'a>(users: &'a [DemoUser], key: &str) -> Option<&'a DemoUser> {
    users
        .iter()
        .find(|u| u.login == key || u.sub == key || u.email.eq_ignore_ascii_case(key))
}

/// `admins, engineering` or, for long lists, `engineering, staff and 28 more`.
pub fn summary(groups: &[String]) -> String {
    match groups.len() {
        0..=3 => groups.join(", "),
        n => format!("{} and {} more", groups[..2].join(", "), n - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_match_the_brief() {
        let users = all();
        let alice = find(&users, "alice").unwrap();
        assert!(alice.groups.contains(&"admins".into()));
        assert_eq!(find(&users, "bob@demo.example").unwrap().groups, ["staff"]);
        let carol = find(&users, "00udemocarol").unwrap();
        assert_eq!(carol.groups.len(), 30);
        assert!(carol.groups.contains(&"engineering".into()));
        assert!(find(&users, "mallory").is_none());
    }

    #[test]
    fn group_ids_are_stable_and_okta_shaped() {
        let g = group("engineering");
        assert_eq!(g, group("engineering"));
        assert!(g.id.starts_with("00g") && g.id.len() == 20);
        assert_ne!(g.id, group("admins").id);
        assert_eq!(
            summary(&find(&all(), "carol").unwrap().groups),
            "engineering, staff and 28 more"
        );
    }
}
