//! The reference page of the contract, `docs/src/conventions/contract.md`:
//! prose written here, field tables generated from [`FIELDS`] and
//! [`CHANGES`](super::CHANGES).

use std::fmt::Write;

use super::fields::{FIELDS, Field};
use super::{CONTRACT_VERSION, FieldChange, Policy};

/// The reference page, as `doris-operator policy contract` prints it.
pub fn reference() -> String {
    reference_with(super::CHANGES)
}

/// The page with `changes` as the renamed and removed fields.
pub(super) fn reference_with(changes: &[FieldChange]) -> String {
    let mut out = String::new();
    out.push_str(&HEADER.replace("{VERSION}", &CONTRACT_VERSION.to_string()));
    out.push_str(&overview());
    out.push_str(&VERSIONS.replace("{VERSION}", &CONTRACT_VERSION.to_string()));
    out.push_str(&changes_table(changes));
    out.push_str(PARTS);
    for policy in Policy::ALL {
        if policy == Policy::ConfigTemplate {
            out.push_str(TEMPLATES);
        }
        let section = section(policy);
        out.push_str(section.heading);
        out.push_str(section.before);
        out.push_str(&ctx_fields(policy));
        out.push_str(section.after);
    }
    out.push_str(FOOTER);
    out
}

/// The fields `policy`'s ctx has.
pub(super) fn fields_of(policy: Policy) -> Vec<&'static Field> {
    FIELDS
        .iter()
        .filter(|f| f.policies.contains(&policy))
        .collect()
}

/// A markdown table cell: `|` escaped, on one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn table(fields: &[&Field]) -> String {
    let mut out =
        String::from("| field | type | since | description |\n| --- | --- | --- | --- |\n");
    for f in fields {
        let open = match (f.open, f.ty.starts_with('[')) {
            (false, _) => "",
            (true, false) => " Its keys are data, not fields.",
            (true, true) => " Its items are data, not fields.",
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {}{open} |",
            f.path,
            cell(f.ty),
            f.since,
            cell(f.description)
        );
    }
    out
}

/// The ctx section of `policy`: the whole table, or for a receiver whose
/// ctx is shape's but for a few fields, what differs.
fn ctx_fields(policy: Policy) -> String {
    let own = fields_of(policy);
    let base = match policy {
        Policy::Config | Policy::HostInit | Policy::ManifestTemplate => Some(Policy::Shape),
        _ => None,
    };
    let mut out = String::from("\n### ctx\n\n");
    let Some(base) = base else {
        out.push_str(&table(&own));
        return out;
    };
    let theirs = fields_of(base);
    let missing: Vec<String> = theirs
        .iter()
        .filter(|f| !own.contains(f))
        .map(|f| format!("`{}`", f.path))
        .collect();
    let extra: Vec<&Field> = own
        .iter()
        .filter(|f| !theirs.contains(f))
        .copied()
        .collect();
    let _ = write!(out, "The ctx of [`{0}`](#{0})", base.title());
    if !missing.is_empty() {
        let _ = write!(out, " without {}", list(&missing));
    }
    if extra.is_empty() {
        out.push_str(".\n");
    } else {
        out.push_str(", and:\n\n");
        out.push_str(&table(&extra));
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn overview() -> String {
    let mut out = String::from(
        "| receives ctx | defined in | called | returns |\n| --- | --- | --- | --- |\n",
    );
    for policy in Policy::ALL {
        let s = section(policy);
        let name = match policy.function() {
            Some(f) => format!("[`fn {f}(ctx)`](#{})", policy.title()),
            None => format!(
                "[{}](#{})",
                policy.title(),
                policy.title().replace(' ', "-")
            ),
        };
        let _ = writeln!(
            out,
            "| {name} | `{}` | {} | {} |",
            policy.file(),
            cell(s.called),
            cell(s.returns)
        );
    }
    out
}

fn changes_table(changes: &[FieldChange]) -> String {
    if changes.is_empty() {
        return format!(
            "None: contract {CONTRACT_VERSION} is the first, and every field above \
             has been in it since.\n"
        );
    }
    let mut out =
        String::from("| contract | field | now | in the ctx of |\n| --- | --- | --- | --- |\n");
    for c in changes {
        let now = match c.now {
            Some(now) => format!("`{now}`"),
            None if c.note.is_empty() => "removed".to_string(),
            None => format!("removed: {}", cell(c.note)),
        };
        let whose: Vec<&str> = c.policies.iter().map(|p| p.title()).collect();
        let _ = writeln!(
            out,
            "| {} | `{}` | {now} | {} |",
            c.since,
            c.path,
            whose.join(", ")
        );
    }
    out
}

/// The prose of one receiver's section.
struct Section {
    heading: &'static str,
    called: &'static str,
    returns: &'static str,
    /// Before the ctx table: what it returns, in full.
    before: &'static str,
    /// After the ctx table.
    after: &'static str,
}

fn section(policy: Policy) -> Section {
    match policy {
        Policy::Shape => Section {
            heading: "\n## shape\n\n",
            called: "once per part, after `host_init`",
            returns: "`#{ objects: [..], values: #{..} }`",
            before: SHAPE,
            after: SHAPE_AFTER,
        },
        Policy::Config => Section {
            heading: "\n## config\n\n",
            called: "once per part, first",
            returns: "`#{ defaults: #{..}, overrides: #{..} }`",
            before: CONFIG,
            after: "",
        },
        Policy::ConfigChange => Section {
            heading: "\n## config_change\n\n",
            called: "for each changed key of a running cluster's configuration; optional",
            returns: "`\"live\"`, `\"restart\"` or `\"ignore\"`",
            before: CONFIG_CHANGE,
            after: "",
        },
        Policy::HostInit => Section {
            heading: "\n## host_init\n\n",
            called: "once per part, after `config`",
            returns: "`[container, ..]` or `#{ init_containers: [..], sysctls: [..] }`",
            before: HOST_INIT,
            after: "",
        },
        Policy::RestartOrder => Section {
            heading: "\n## restart_order\n\n",
            called: "when pods need a restart",
            returns: "`[#{ pods, wait_for, drain_seconds }, ..]`",
            before: RESTART_ORDER,
            after: RESTART_ORDER_AFTER,
        },
        Policy::Maintenance => Section {
            heading: "\n## maintenance\n\n",
            called: "for each cluster, before a rollout starts; optional",
            returns: "`#{ hold, windows, settle_seconds }`",
            before: MAINTENANCE,
            after: "",
        },
        Policy::Membership => Section {
            heading: "\n## membership\n\n",
            called: "for each cluster",
            returns: "`#{ decommission_be, register_timeout_seconds, drop_stale, recheck_seconds }`",
            before: MEMBERSHIP,
            after: "",
        },
        Policy::ConfigTemplate => Section {
            heading: "\n### Configuration templates\n\n",
            called: "once per part, after `config`",
            returns: "the configuration file's text",
            before: CONFIG_TEMPLATE,
            after: "",
        },
        Policy::ManifestTemplate => Section {
            heading: "\n### Manifest templates\n\n",
            called: "once per part, after `shape`",
            returns: "YAML documents, one object each",
            before: MANIFEST_TEMPLATE,
            after: MANIFEST_TEMPLATE_AFTER,
        },
    }
}

const HEADER: &str = r#"<!-- Generated from src/conventions/contract/ by `doris-operator policy contract`.
     Edit the code, then: UPDATE_CONTRACT_DOC=1 cargo test --lib contract -->

# The policy contract

This is contract {VERSION}: what each policy function and template of a
convention set receives, and what it must return. Each policy defines one
function taking one map, `ctx`, and returns plain data (maps, arrays,
strings, numbers, bools); a field set to `()` is left out. How to write,
check and roll out a convention set is in
[Conventions](index.md#change-a-convention).

The field tables below are generated from the operator's code, and a test
checks them against the ctx the operator builds for the sample clusters, so
they list every field there is.

"#;

const VERSIONS: &str = r#"
## Versions

`ctx.contract` (`contract` in a template) is the version of the contract
the operator speaks, now {VERSION}. A policy file says which version it was
written for with a comment among the lines it starts with:

```rhai
// contract: {VERSION}
// shape.rhai — the Kubernetes objects of one Doris component.
```

The declaration is optional, appears once, before any code, and holds a
whole number from 1. A file written for a newer contract than the
operator's is refused when the conventions are compiled (by `policy check`,
and before a convention set goes live), naming the declaration:

```text
my-conventions/shape.rhai:1: written for contract 3; this operator speaks contract 1 — upgrade the operator
```

When a field is renamed or removed the version goes up, and the change is
listed below. The operator finds where a policy reads the old field, by
walking each compiled policy from its function through the functions it
calls: `ctx.old`, `this.old` (in a function called as a method),
`ctx["old"]`, or through a variable named after the field's first part
(`let names = ctx.names; names.old`).

- In a file that declares an older contract, each such read is an error
  naming the file, line and column and the new name.
- In any other file, `policy check` warns about it.
- A policy that fails at run time while reading such a field has the cause
  added to its error: `ctx.a was renamed to ctx.b in contract 2 (read at
  my-conventions/shape.rhai:12:9)`.

Templates are not searched for old fields: reading a field that is gone
fails their render, as any undefined value does.

### Renamed and removed fields

"#;

const PARTS: &str = r#"
## Clusters, components and parts

Both kinds of cluster go through the same policies and templates, one part
(one StatefulSet) at a time. `ctx.kind` says which kind, `ctx.component`
which component and `ctx.part` which part; for cluster `n`:

| kind | `component` | `part` | `spec` | `names` |
| --- | --- | --- | --- | --- |
| `DorisCluster` | `fe`, `be`, `cn`, `broker` | the component | `feSpec`, `beSpec`, `cnSpec`, `brokerSpec` | `n-fe`, headless `n-fe-internal`, access `n-fe-service`, ConfigMap `n-fe-conf`, … |
| `DorisDisaggregatedCluster` | `ms` | `ms` | `metaService` | StatefulSet and its one Service `n-ms`, ConfigMap `n-ms-conf` |
| | `fe` | `fe` | `feSpec` | `n-fe`, headless `n-fe-internal`, access `n-fe`, ConfigMap `n-fe-conf` |
| | `cg` | a compute group's `uniqueId`, lower-cased, `_` → `-` (`p`) | that `computeGroups[i]` | `n-p`, headless `n-p`, access `n-p-external`, ConfigMap `n-p-conf` |

For each part, `fn config` decides the configuration, its template renders
it, then `fn host_init` and `fn shape` run and the manifest templates
render; each step's ctx has what the steps before it decided. The other
policies are called for a whole cluster.

## Refinements

Every function below may also be defined with two parameters,
`fn f(ctx, below)`, in a file laid over another of the same name: it
refines. `below` is what the layer below returned for the same ctx
(`host_init`'s always as `#{ init_containers, sysctls }`; `()` when no
layer below defines the function), and its ctx has one more field,
`layer`: `#{ file, below }`, the refining file and the file below it. A
template that reads `below` refines the one below it: `below` is the list
of objects a manifest template below rendered, or the text a
configuration template below rendered, and `layer` is as for policies.
`patch(path, value)`, `put(path, value)` and `at(path)` (methods in
policies, filters in templates) change or read what a path such as
`objects[kind=StatefulSet].spec.template.spec` leads to, and name a path
that does not exist.
"#;

const SHAPE: &str = r#"`fn shape(ctx)` in `shape.rhai` returns `#{ objects: [..], values: #{..} }`:
the part's Kubernetes objects as maps, and the values the manifest
templates use. The operator sets each object's namespace and owner, drops
fields whose value is `()`, and checks each object of a known kind against
its Kubernetes type: a wrong type or an unknown field is an error naming the
object and the field. A StatefulSet that a HorizontalPodAutoscaler of the
plan scales (`scaleTargetRef`) gets its `replicas` only when it is created;
the autoscaler owns the count after that.
"#;

const SHAPE_AFTER: &str = r#"
### What the defaults make of a DorisDisaggregatedCluster

The default `shape.rhai` gives such a cluster the shape apache/doris-operator
gives it: containers `metaservice`, `fe` and `compute` running the
disaggregated images' `*_disaggregated_entrypoint.sh`,
`*_disaggregated_prestop.sh` and `*_disaggregated_probe.sh alive|ready`; the
variables those scripts read (`FDB_ENDPOINT`; `MS_ENDPOINT`, `CLUSTER_ID`,
`STATEFULSET_NAME`, `ELECT_NUMBER` (default 1); `COMPUTE_GROUP_NAME`,
`HOST_TYPE`, `ENV_FE_ADDR`, `FE_QUERY_PORT` …; the user's `envVars` replace
same-named ones); logs, the FE's `meta_dir` and each compute group's file
cache (the `path`s of be.conf `file_cache_path`, default
`/opt/apache-doris/be/file_cache`) on emptyDirs, or on claims from
`persistentVolumes` named after their paths (`/opt/apache-doris/be/file_cache`
→ `file-cache`; the entry without `mountPaths` is the template;
`logNotStore` leaves logs off claims) or from the deprecated
`persistentVolume` (`fe-log`, `fe-meta`, `be-log`, `be-storage0` …);
`provisioner: operator` marks a claim template
`apache.doris.org/pvc-manager: operator`. The configuration is in cloud mode
(`deploy_mode = cloud`, the FE's `meta_service_endpoint` and `cluster_id`,
the meta service's `fdb_cluster`), and a configuration change restarts the
part.

Where the defaults differ from apache/doris-operator: the meta service's
container port is its `brpc_listen_port` (the peer declares
`broker-ipc-port` 8000), a compute group registers by IP when the FE runs
with `enable_fqdn_mode = false`, a log, meta or cache directory no claim
covers gets an emptyDir, `persistentVolume.mountPaths` are honoured for the
FE and meta service too, and pods restart through the operator's ordered
rollout (`OnDelete`) rather than a `RollingUpdate`.
"#;

const CONFIG: &str = r#"`fn config(ctx)` in `config.rhai` returns `#{ defaults: #{..}, overrides: #{..} }`.
The user's configuration file is kept line for line; `defaults` add keys
the user did not set, `overrides` replace the user's; both are appended in
key order. Values are strings, numbers or bools; `()` leaves the key alone.
The result is rendered by the component's
[configuration template](#configuration-templates), and the operator reads
ports and paths from what the template produced.
"#;

const CONFIG_CHANGE: &str = r#"`fn config_change(ctx)` in `config.rhai` (optional) returns `"live"`,
`"restart"` or `"ignore"` for one changed key of a running cluster's
configuration, or for another file of the part's ConfigMap that changed.

- `"live"` sets the key on the running nodes (FE: `ADMIN SET ALL FRONTENDS
  CONFIG`; BE, CN: `update_config` with `persist=true`); a key Doris cannot
  take live restarts instead.
- `"restart"` restarts the pods in order when the pod template carries
  `config.hash` (the default `shape.rhai` puts it there when
  `restart_on_change`), and otherwise waits for their next start.
- `"ignore"` leaves the key for the pods' next start.

Without the function: `"ignore"` unless `restart_on_change`, then `"live"`
when `change.mutable`, else `"restart"` (the default `config.rhai` spells
this out). The operator asks Doris about mutability only when the answer
changes a decision. `policy check` and the live conventions check run the
function on made-up changes of every part, so a broken one never goes live.
"#;

const HOST_INIT: &str = r#"`fn host_init(ctx)` in `host_init.rhai` returns the init containers
(Kubernetes Container maps, camelCase keys) that prepare the host, or
`#{ init_containers: [..], sysctls: [#{ name, value }] }` to set pod sysctls
too. The containers become the pod's `initContainers`, in order (`fn shape`
may add to them); the sysctls go into the pod's `securityContext.sysctls`.
Each container is checked here, so a mistake names `host_init.rhai` rather
than the StatefulSet.
"#;

const RESTART_ORDER: &str = r#"`fn restart_order(ctx)` in `restart.rhai` returns the steps of a rollout:

```rhai
[#{ pods: ["doris-be-2"], wait_for: ["pod_ready", "fe_reports_alive"], drain_seconds: 30 }, ..]
```

The pods of a step restart together; the operator then waits for every
condition in `wait_for` (`"pod_ready"`: the pods are Ready again,
`"fe_reports_alive"`: the FE lists them alive; `["pod_ready"]` when left
out) before the next step. `drain_seconds` (BE and CN) is how long a node
stops getting queries and loads before it restarts. Every pod in `ctx.pods`
must be in exactly one step, and a step holds pods of one component.
"#;

const RESTART_ORDER_AFTER: &str = r#"
The default restarts BEs, then CNs and brokers, then FE observers, then
followers, master last, one pod at a time, highest ordinal first, each back
and seen alive by the FE before the next goes. A BE or CN is drained 30
seconds (the cluster's annotation `doris.selectdb.com/drain-seconds` changes
that). A `DorisDisaggregatedCluster` restarts as the Doris upgrade guide for
storage-compute separation says: the meta service first, then the compute
groups (one group after another by name, each BE drained and seen alive by
the FE like a BE), then the FE, master last.
"#;

const MAINTENANCE: &str = r#"`fn maintenance(ctx)` in `restart.rhai` (optional) returns
`#{ hold, windows, settle_seconds }`, when restarts the user did not ask for
may run (see
[Restart on your schedule](../upgrade-restart.md#restart-on-your-schedule)):

- `hold`: the restart reasons that wait for a window or an approval; only
  `"conventions"` can be held.
- `windows`: `[#{ days, from, to, time_zone }]`; `days` from `Mon` … `Sun`,
  every day when left out; `from`/`to` `"HH:MM"`, `"24:00"` for midnight, a
  `to` not after `from` ends the next day; an IANA `time_zone`, `UTC` when
  left out.
- `settle_seconds`: 0 to 3600; no rollout step starts until the pod
  templates have stayed unchanged this long.

A mistake names the value (`fn maintenance: windows[0]: days: "Saturday"
is not a day`). Without the function nothing is held and pod templates
settle for 5 seconds. Policies have no clock: the operator decides when a
window is open.
"#;

const MEMBERSHIP: &str = r#"`fn membership(ctx)` in `membership.rhai` returns how the operator keeps the
FE's list of nodes in step with the pods:

- `decommission_be` (bool): on BE scale-down, decommission the BEs going
  away and shrink once the FE has moved their tablets off (true), or shrink
  at once and drop them (false).
- `register_timeout_seconds` (positive): a new pod that is Ready but not
  listed by the FE after this long is reported.
- `drop_stale` (bool): nodes the FE lists that have no pod are dropped (a BE
  decommissioned) rather than only reported.
- `recheck_seconds` (positive): how often a settled cluster's membership is
  compared with the FE's list anyway.

The default keeps data: BEs are decommissioned, and stale members only
reported unless the cluster's annotation
`doris.selectdb.com/drop-stale-members: "true"` says otherwise. A
`DorisDisaggregatedCluster`'s compute-group BEs are decommissioned on
scale-down when its `spec.enableDecommission` is true, and dropped
otherwise.
"#;

const TEMPLATES: &str = r#"
## Templates

Templates render plain text: nothing is quoted or escaped, so
`name: {{ names.statefulset }}-pdb` is natural YAML; write
`{{ value | tojson }}` for a map, a list, or a string that may hold `:` or
`#`. An undefined value is an error, and each render is limited by fuel.
"#;

const CONFIG_TEMPLATE: &str = r#"`fe.conf.j2`, `be.conf.j2`, `cn.conf.j2`, `apache_hdfs_broker.conf.j2` and
`doris_cloud.conf.j2` render each part's configuration file (`cn.conf.j2`
for a CN, `be.conf.j2` for a compute group) from the lines `fn config`
decided.
"#;

const MANIFEST_TEMPLATE: &str = r#"Each `*.yaml.j2` file renders more objects for each part, one YAML document
each (`---` between them); the defaults are `services.yaml.j2`,
`configmap.yaml.j2` and `monitoring.yaml.j2`.
"#;

const MANIFEST_TEMPLATE_AFTER: &str = r#"
An error in the YAML a manifest template renders names the template line
that produced it and quotes the rendered line. An undefined `values.x` says
that `fn shape` returned no `x`.
"#;

const FOOTER: &str = r#"
## Helpers

Every policy can call `conf_get(conf, key, default)`,
`conf_int(conf, key, default)`, `conf_bool(conf, key, default)` (lookups
are case-insensitive), `storage_paths(storage_root_path)`,
`expand_doris_home(path, home)`, `unique_suffixes(paths)`, `merge(a, b)`,
`or_default(value, default)`, `is_absent(value)`, `dns_label(text)` and
`json_value(text)` (what JSON text holds, or `()` when it is not JSON). What
else a policy may do is in [The sandbox](sandbox.md).

## A value of the user's that cannot be used

A policy that finds a value the user wrote unusable says so with
`throw #{ field: "<path in the cluster>", message: "..." }`: the error then
names that field (the default `restart.rhai` does this for
`doris.selectdb.com/drain-seconds`), and, being the cluster's mistake rather
than the convention's, it does not stop a convention set from going live.

## Objects of other kinds

Each object is checked against its Kubernetes type when it is one of the
kinds the operator knows (StatefulSet, Service, ConfigMap, Secret,
PersistentVolumeClaim, PodDisruptionBudget, HorizontalPodAutoscaler). An
object of any other kind is refused — `kind: Servce` is a typo, not a new
kind — unless the API server serves it: the operator asks the API server
(discovery) when a convention makes such an object, whether it comes from
a ConfigMap or from `run --conventions-dir` at start-up (a kind served by a
CRD installed later is found when the conventions are next offered).
Offline, `render` and `policy check` take the served kinds as
`--api-resources monitoring.coreos.com/v1/ServiceMonitor` (repeat, or
separate with commas), e.g. for the ServiceMonitors the default
`monitoring.yaml.j2` makes when the API server serves them:

```console
$ doris-operator policy check examples/conventions/service-annotation.yaml --api-resources monitoring.coreos.com/v1/ServiceMonitor
conventions examples/conventions/service-annotation.yaml (revision [..]): compiled, 4 sample clusters rendered with their full restart, membership rules and maintenance windows (every policy and template ran)

```

The operator reads and writes (server-side apply) objects of any kind a
convention makes, and deletes those a template stops making, so its
ClusterRole must allow `get`, `list`, `create`, `patch` and `delete` on
them: `deploy/10-rbac.yaml` grants PodDisruptionBudgets; add a rule for any
other kind you emit (a set that needs a missing rule is refused before it
goes live, naming the rule). Objects of such extra kinds are owned by their
cluster and go with it. The operator remembers on the cluster which extra
kinds it made objects of (annotation `doris.selectdb.com/extra-kinds`,
written only when that list changes), so when a template stops making an
object, or is removed, the next reconcile lists the cluster's objects of
those kinds (its own label and ownership only) and deletes the ones no
longer planned, even across an operator restart; a kind is forgotten once
its last object is gone.
"#;
