//! Names a cluster gives that something else reads: the namespace (the API
//! server's) and the container images (the kubelet's). What they refuse is
//! refused here first, at the field that holds it.

use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;

use super::FieldError;

/// An RFC 1123 label, as Kubernetes checks a namespace.
const DNS_LABEL_MAX: usize = 63;

/// Why `value` is not an RFC 1123 DNS label, if it is not one.
pub fn dns_label(value: &str) -> Result<(), String> {
    static LABEL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("a valid regex"));
    if value.len() > DNS_LABEL_MAX {
        return Err(format!(
            "{value:?} is {} characters long; a DNS label has at most {DNS_LABEL_MAX}",
            value.len()
        ));
    }
    if !LABEL.is_match(value) {
        return Err(format!(
            "{value:?} is not a DNS label: lowercase letters, digits and '-', starting and \
             ending with a letter or digit (RFC 1123)"
        ));
    }
    Ok(())
}

/// What the API server refuses of a cluster's metadata that the CRD does
/// not check: a namespace that is not a DNS label.
pub fn check_metadata(meta: &ObjectMeta, errors: &mut Vec<FieldError>) {
    if let Some(namespace) = meta.namespace.as_deref().filter(|n| !n.is_empty())
        && let Err(message) = dns_label(namespace)
    {
        errors.push(FieldError {
            path: "metadata.namespace".into(),
            message,
        });
    }
}

/// The parts of the image reference grammar of the container registries
/// (docker/distribution's `reference` package, which the kubelet parses
/// images with):
///
/// ```text
/// reference        := name [ ":" tag ] [ "@" digest ]
/// name             := [domain '/'] remote-name
/// domain           := host [':' port-number]
/// host             := domain-name | IPv4address | \[ IPv6address \]
/// domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
/// path-component   := alpha-numeric [separator alpha-numeric]*
/// alpha-numeric    := /[a-z0-9]+/
/// separator        := /[_.]|__|[-]+/
/// tag              := /[\w][\w.-]{0,127}/
/// digest           := algorithm ":" /[0-9a-fA-F]{32,}/
/// algorithm        := /[A-Za-z][A-Za-z0-9]*/ [ /[+.-_]/ /[A-Za-z][A-Za-z0-9]*/ ]*
/// ```
struct Grammar {
    domain: Regex,
    path_component: Regex,
    tag: Regex,
    digest: Regex,
    identifier: Regex,
}

static GRAMMAR: LazyLock<Grammar> = LazyLock::new(|| {
    let component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let re = |s: &str| Regex::new(s).expect("a valid regex");
    Grammar {
        domain: re(&format!(
            r"^(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
        )),
        path_component: re(r"^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$"),
        tag: re(r"^\w[\w.-]{0,127}$"),
        digest: re(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$"),
        identifier: re("^[a-f0-9]{64}$"),
    }
});

/// The longest repository path (`library/doris`), as the registries' grammar
/// bounds it.
const REPOSITORY_MAX: usize = 255;

/// Why `image` is not a container image reference the kubelet can pull, if
/// it is not one. `apache/doris:fe-2.1.8`, `registry:5000/doris/fe@sha256:…`
/// and `doris` are; `apache/Doris:fe`, `doris:fe 2.1` and `doris:` are not.
pub fn image_reference(image: &str) -> Result<(), String> {
    let g = &*GRAMMAR;
    if image.trim().is_empty() {
        return Err("is required".into());
    }
    let bad = |why: String| Err(format!("{image:?} is not a valid image reference: {why}"));
    if image.chars().any(char::is_whitespace) {
        return bad("it contains whitespace".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest
        && !g.digest.is_match(digest)
    {
        return bad(format!(
            "the digest {digest:?} is not <algorithm>:<hex digits> (sha256:… with at least 32 \
             hex digits)"
        ));
    }
    // A ':' after the last '/' starts the tag; one before it is a port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !g.tag.is_match(tag)
    {
        return bad(format!(
            "the tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting \
             with '.' or '-'"
        ));
    }
    if name.is_empty() {
        return bad("it names no repository".into());
    }
    // As the registries' clients split it: the first component is a
    // registry host when it has a '.' or a ':', is `localhost`, or has an
    // uppercase letter (which no repository path may have).
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), path)
        }
        _ => (None, name),
    };
    if let Some(domain) = domain
        && !g.domain.is_match(domain)
    {
        return bad(format!(
            "the registry {domain:?} is not a host name or address with an optional :port"
        ));
    }
    if path.len() > REPOSITORY_MAX {
        return bad(format!(
            "the repository name is {} characters long, more than {REPOSITORY_MAX}",
            path.len()
        ));
    }
    if domain.is_none() && tag.is_none() && digest.is_none() && g.identifier.is_match(path) {
        return bad("a 64-digit hexadecimal string is an image ID, not a repository name".into());
    }
    for component in path.split('/') {
        if g.path_component.is_match(component) {
            continue;
        }
        if g.path_component.is_match(&component.to_ascii_lowercase()) {
            return bad(format!("the repository name {path:?} must be lowercase"));
        }
        return bad(format!(
            "{component:?} in the repository name {path:?} is not lowercase letters and digits \
             separated by '.', '_', '__' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        for good in ["default", "doris-prod", "a", "0ns", &"a".repeat(63)] {
            assert_eq!(dns_label(good), Ok(()), "{good}");
        }
        for bad in [
            "Doris",
            "doris_prod",
            "doris.prod",
            "-a",
            "a-",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_follow_the_reference_grammar() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for good in [
            "doris".to_string(),
            "apache/doris:fe-2.1.8".into(),
            "apache/doris:be-3.0.3".into(),
            "selectdb/doris.be-ubuntu:3.0.2".into(),
            "registry.example.com:5000/team/doris/fe:v1_2.3".into(),
            "localhost/doris:fe".into(),
            "localhost:5000/doris".into(),
            "[::1]:5000/doris/fe:1".into(),
            "10.0.0.1:5000/a__b/c--d:Latest".into(),
            "Registry.Example.com/doris:fe".into(),
            format!("apache/doris@{digest}"),
            format!("apache/doris:fe-2.1.8@{digest}"),
        ] {
            assert_eq!(image_reference(&good), Ok(()), "{good}");
        }
        let refused = |image: &str, why: &str| {
            let err = image_reference(image).unwrap_err();
            assert!(err.contains(why), "{image}: {err}");
        };
        refused("", "is required");
        refused("  ", "is required");
        refused("apache/doris:fe 2.1.8", "contains whitespace");
        refused(" apache/doris:fe", "contains whitespace");
        refused("apache/Doris:fe-2.1.8", "must be lowercase");
        refused("Doris", "must be lowercase");
        refused("apache/doris:", "the tag \"\"");
        refused("apache/doris:.fe", "the tag \".fe\"");
        refused(&format!("apache/doris:{}", "a".repeat(129)), "the tag");
        refused("apache/doris:fe:2", "\"doris:fe\" in the repository name");
        refused("apache/doris@sha256:abc", "the digest \"sha256:abc\"");
        refused("apache//doris", "\"\" in the repository name");
        refused("apache/doris-:fe", "\"doris-\" in the repository name");
        refused(":fe", "names no repository");
        refused("bad_host.com/doris", "the registry \"bad_host.com\"");
        refused(&"a".repeat(64), "image ID");
        refused(&format!("a/{}", "b".repeat(255)), "more than 255");
    }
}
