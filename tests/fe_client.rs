//! The FE client against the FE simulator, over the real MySQL protocol:
//! reads, membership changes, decommission draining, and failures (bad
//! password, FE down or hanging, SQL errors, slow answers).

mod fesim;

use std::time::{Duration, Instant};

use doris_operator::doris::{
    FeClient, FeClientConfig, FeEndpoint, FeErrorKind, FrontendRole, NodeRole,
};
use fesim::{CloudTags, Columns, DEFAULT_COMPUTE_GROUP, FeSim, FeSimConfig, SimFrontend};

const BE: &str = "127.0.0.1";

fn quick() -> FeClientConfig {
    FeClientConfig {
        connect_timeout: Duration::from_secs(1),
        query_timeout: Duration::from_secs(2),
        retries: 2,
        retry_backoff: Duration::from_millis(50),
    }
}

fn client_for(sim: &FeSim) -> FeClient {
    FeClient::with_config(
        FeEndpoint::new("127.0.0.1").with_port(sim.addr().port()),
        quick(),
    )
}

async fn start() -> (FeSim, FeClient) {
    let sim = FeSim::start(FeSimConfig::default()).await;
    let client = client_for(&sim);
    (sim, client)
}

#[tokio::test]
async fn reads_frontends_and_backends() {
    let sim = FeSim::start(FeSimConfig {
        frontends: vec![
            SimFrontend::new("fe-0.doris-fe", 9010, "FOLLOWER"),
            SimFrontend::new("fe-1.doris-fe", 9010, "OBSERVER"),
        ],
        ..FeSimConfig::default()
    })
    .await;
    let client = client_for(&sim);
    sim.register_backend("be-0.doris-be", 9050).unwrap();
    sim.register_backend("be-1.doris-be", 9050).unwrap();
    sim.register_compute_node("cn-0.doris-cn", 9050).unwrap();
    sim.set_tablets("be-0.doris-be", 9050, 42);
    sim.set_backend_alive("be-1.doris-be", 9050, false);

    let fes = client.show_frontends().await.unwrap();
    assert_eq!(fes.len(), 2);
    let master = &fes[0];
    assert_eq!(master.host, "fe-0.doris-fe");
    assert_eq!(master.edit_log_port, 9010);
    assert_eq!(master.role, FrontendRole::Follower);
    assert!(master.is_master && master.alive && master.join);
    assert_eq!(master.query_port, Some(sim.addr().port()));
    assert_eq!(master.current_connected, Some(true));
    let observer = &fes[1];
    assert_eq!(observer.role, FrontendRole::Observer);
    assert!(!observer.is_master && !observer.alive && !observer.join);

    let bes = client.show_backends().await.unwrap();
    let hosts: Vec<&str> = bes.iter().map(|b| b.host.as_str()).collect();
    assert_eq!(hosts, ["be-0.doris-be", "be-1.doris-be", "cn-0.doris-cn"]);
    let be0 = &bes[0];
    assert_eq!(be0.id, 10002);
    assert_eq!((be0.heartbeat_port, be0.be_port), (9050, Some(9060)));
    assert_eq!((be0.http_port, be0.brpc_port), (Some(8040), Some(8060)));
    assert!(be0.alive && !be0.decommissioned);
    assert_eq!(be0.tablet_num, 42);
    assert_eq!(be0.node_role, Some(NodeRole::Mix));
    assert_eq!(
        (be0.query_disabled, be0.load_disabled),
        (Some(false), Some(false))
    );
    let be1 = &bes[1];
    assert!(!be1.alive);
    assert_eq!(
        be1.node_role, None,
        "Doris hides the role of a dead backend"
    );
    assert!(!be1.err_msg.is_empty());
    assert!(bes[2].is_compute_node());

    assert_eq!(sim.statements(), ["SHOW FRONTENDS", "SHOW BACKENDS"]);
}

#[tokio::test]
async fn reads_the_columns_of_doris_1_2() {
    let sim = FeSim::start(FeSimConfig {
        columns: Columns::Doris12,
        ..FeSimConfig::default()
    })
    .await;
    let client = client_for(&sim);
    sim.register_backend("10.0.0.7", 9050).unwrap();
    let bes = client.show_backends().await.unwrap();
    assert_eq!(bes[0].host, "10.0.0.7");
    assert_eq!(bes[0].node_role, None);
    assert_eq!(bes[0].query_disabled, Some(false));
    let fes = client.show_frontends().await.unwrap();
    assert_eq!(fes[0].host, "127.0.0.1");
    assert_eq!(fes[0].arrow_flight_sql_port, None);
}

#[tokio::test]
async fn adds_a_backend_once() {
    let (sim, client) = start().await;
    client.add_backend("be-0.doris-be", 9050).await.unwrap();
    let be = sim.backend("be-0.doris-be", 9050).expect("registered");
    assert!(be.alive && !be.decommissioned);

    let err = client.add_backend("be-0.doris-be", 9050).await.unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("Same backend already exists[be-0.doris-be:9050]")),
        "{err}"
    );
    assert_eq!(err.attempts, 1);
    assert_eq!(sim.backends().len(), 1);
    assert_eq!(
        sim.statements(),
        [
            "ALTER SYSTEM ADD BACKEND \"be-0.doris-be:9050\"",
            "ALTER SYSTEM ADD BACKEND \"be-0.doris-be:9050\""
        ]
    );
}

#[tokio::test]
async fn a_backend_registering_itself_is_seen() {
    let (sim, client) = start().await;
    assert!(client.show_backends().await.unwrap().is_empty());
    sim.register_backend(BE, 9050).unwrap();
    assert_eq!(
        sim.register_backend(BE, 9050).unwrap_err(),
        "Same backend already exists[127.0.0.1:9050]"
    );
    let bes = client.show_backends().await.unwrap();
    assert_eq!(bes.len(), 1);
    assert!(bes[0].alive);
}

#[tokio::test]
async fn decommission_drains_tablets_then_removes_the_backend() {
    let (sim, client) = start().await;
    sim.set_drain_rate(20.0);
    sim.register_backend(BE, 9050).unwrap();
    sim.register_backend(BE, 9051).unwrap();
    sim.set_tablets(BE, 9050, 12);

    client.decommission_backend(BE, 9050).await.unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let bes = client.show_backends().await.unwrap();
        match bes.iter().find(|b| b.heartbeat_port == 9050) {
            Some(be) => {
                assert!(be.decommissioned);
                seen.push(be.tablet_num);
            }
            None => break,
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still there: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // 12 tablets at 20 a second: about 0.6 s, seen part-way through.
    assert!(started.elapsed() >= Duration::from_millis(500), "{seen:?}");
    assert!(seen.iter().any(|&n| n > 0 && n < 12), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "{seen:?}");
    // The other backend is untouched.
    let bes = client.show_backends().await.unwrap();
    assert_eq!(bes.len(), 1);
    assert!(!bes[0].decommissioned);
}

#[tokio::test]
async fn decommissioning_an_empty_backend_removes_it_at_once() {
    let (sim, client) = start().await;
    sim.register_compute_node(BE, 9050).unwrap();
    client.decommission_backend(BE, 9050).await.unwrap();
    assert!(client.show_backends().await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_decommission_keeps_the_backend() {
    let (sim, client) = start().await;
    sim.set_drain_rate(100.0);
    sim.register_backend(BE, 9050).unwrap();
    sim.set_tablets(BE, 9050, 1000);

    client.decommission_backend(BE, 9050).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.cancel_decommission(BE, 9050).await.unwrap();
    let be = &client.show_backends().await.unwrap()[0];
    assert!(!be.decommissioned);
    let left = be.tablet_num;
    assert!(left < 1000 && left > 0, "{left}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let be = &client.show_backends().await.unwrap()[0];
    assert_eq!(be.tablet_num, left, "no more draining once cancelled");

    // Cancelling again is fine, as in Doris; an unknown backend is not.
    client.cancel_decommission(BE, 9050).await.unwrap();
    let err = client.cancel_decommission(BE, 9999).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Backend does not exist[127.0.0.1:9999]"),
        "{err}"
    );
    assert!(
        sim.statements()
            .contains(&"CANCEL DECOMMISSION BACKEND \"127.0.0.1:9050\"".to_string())
    );
}

#[tokio::test]
async fn drop_needs_dropp_as_in_doris() {
    let (sim, client) = start().await;
    sim.register_backend(BE, 9050).unwrap();
    sim.set_tablets(BE, 9050, 5);

    let err = client.drop_backend(BE, 9050, false).await.unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("use DROPP instead of DROP")),
        "{err}"
    );
    assert_eq!(sim.backends().len(), 1);

    client.drop_backend(BE, 9050, true).await.unwrap();
    assert!(
        sim.backends().is_empty(),
        "dropped at once, tablets and all"
    );

    let err = client.drop_backend(BE, 9050, true).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(
        &sim.statements()[..2],
        [
            "ALTER SYSTEM DROP BACKEND \"127.0.0.1:9050\"",
            "ALTER SYSTEM DROPP BACKEND \"127.0.0.1:9050\""
        ]
    );
}

/// The FE of a storage-compute separated cluster and a client of it.
async fn start_cloud() -> (FeSim, FeClient) {
    let sim = FeSim::start(FeSimConfig::cloud()).await;
    let client = client_for(&sim);
    (sim, client)
}

fn cg_host(group: &str, ordinal: u32) -> String {
    format!("ddc-{group}-{ordinal}.ddc-{group}.default.svc.cluster.local")
}

#[tokio::test]
async fn lists_backends_with_their_compute_groups() {
    let (sim, client) = start_cloud().await;
    sim.register_backend_in_group(&cg_host("cg1", 0), 9050, "cg1")
        .unwrap();
    sim.register_backend_in_group(&cg_host("cg1", 1), 9050, "cg1")
        .unwrap();
    sim.register_backend_in_group(&cg_host("cg2", 0), 9050, "cg2")
        .unwrap();
    sim.register_backend("be-loose.default.svc.cluster.local", 9050)
        .unwrap();

    let bes = client.show_backends().await.unwrap();
    let groups: Vec<(&str, Option<&str>)> = bes
        .iter()
        .map(|b| (b.host.as_str(), b.compute_group_name()))
        .collect();
    assert_eq!(
        groups,
        [
            (
                "be-loose.default.svc.cluster.local",
                Some(DEFAULT_COMPUTE_GROUP)
            ),
            (cg_host("cg1", 0).as_str(), Some("cg1")),
            (cg_host("cg1", 1).as_str(), Some("cg1")),
            (cg_host("cg2", 0).as_str(), Some("cg2")),
        ]
    );
    // One id per group, the same for all its backends, as the simulator
    // has it; distinct between groups.
    let id = |host: &str| {
        bes.iter()
            .find(|b| b.host == host)
            .and_then(|b| b.compute_group_id())
            .map(str::to_string)
    };
    let cg1 = id(&cg_host("cg1", 0)).expect("cg1 has an id");
    assert_eq!(id(&cg_host("cg1", 1)).as_ref(), Some(&cg1));
    assert_eq!(sim.compute_group_id("cg1"), Some(cg1.clone()));
    let cg2 = id(&cg_host("cg2", 0)).expect("cg2 has an id");
    assert_ne!(cg1, cg2);
    assert_eq!(cg1.len(), 8);
    assert!(
        bes.iter()
            .all(|b| b.alive && b.query_disabled == Some(false))
    );
    assert_eq!(
        sim.compute_group_sizes().into_iter().collect::<Vec<_>>(),
        [
            ("cg1".to_string(), 2),
            ("cg2".to_string(), 1),
            (DEFAULT_COMPUTE_GROUP.to_string(), 1)
        ]
    );

    // The FE list reads as before.
    let fes = client.show_frontends().await.unwrap();
    assert_eq!(fes.len(), 1);
    assert!(fes[0].is_master && fes[0].alive);
    assert_eq!(fes[0].query_port, Some(sim.addr().port()));
}

#[tokio::test]
async fn reads_compute_groups_of_doris_3_0_0() {
    let sim = FeSim::start(FeSimConfig {
        cloud: Some(CloudTags::CloudCluster),
        ..FeSimConfig::cloud()
    })
    .await;
    let client = client_for(&sim);
    sim.register_backend_in_group(&cg_host("cg1", 0), 9050, "cg1")
        .unwrap();
    let be = &client.show_backends().await.unwrap()[0];
    assert!(
        be.tag
            .as_deref()
            .is_some_and(|t| t.contains("\"cloud_cluster_name\" : \"cg1\"")),
        "{:?}",
        be.tag
    );
    assert_eq!(be.compute_group_name(), Some("cg1"));
    assert_eq!(
        be.compute_group_id(),
        sim.compute_group_id("cg1").as_deref()
    );
}

#[tokio::test]
async fn adds_a_backend_to_a_compute_group() {
    let (sim, client) = start_cloud().await;
    let host = cg_host("cg1", 0);
    client
        .add_backend_to_compute_group(&host, 9050, "cg1")
        .await
        .unwrap();
    assert_eq!(
        sim.statements(),
        [format!(
            "ALTER SYSTEM ADD BACKEND \"{host}:9050\" PROPERTIES (\"tag.compute_group_name\" = \"cg1\")"
        )]
    );
    let be = sim.backend(&host, 9050).expect("registered");
    assert_eq!(be.compute_group.as_deref(), Some("cg1"));
    assert!(be.alive);

    // Once only, whichever group is asked for.
    let err = client
        .add_backend_to_compute_group(&host, 9050, "cg2")
        .await
        .unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("Same backend already exists")),
        "{err}"
    );
    assert_eq!(sim.backends_in_group("cg1").len(), 1);
    assert!(sim.backends_in_group("cg2").is_empty());

    // A second backend joins the same group, with the same id.
    client
        .add_backend_to_compute_group(&cg_host("cg1", 1), 9050, "cg1")
        .await
        .unwrap();
    // Without a group, a backend joins the default one.
    client.add_backend(&cg_host("x", 0), 9050).await.unwrap();
    let bes = client.show_backends().await.unwrap();
    let cg1: Vec<_> = bes
        .iter()
        .filter(|b| b.compute_group_name() == Some("cg1"))
        .collect();
    assert_eq!(cg1.len(), 2);
    assert_eq!(cg1[0].compute_group_id(), cg1[1].compute_group_id());
    assert!(
        bes.iter()
            .any(|b| b.compute_group_name() == Some(DEFAULT_COMPUTE_GROUP))
    );
}

#[tokio::test]
async fn compute_groups_need_a_storage_compute_separated_fe() {
    let (sim, client) = start().await;
    let err = client
        .add_backend_to_compute_group(BE, 9050, "cg1")
        .await
        .unwrap_err();
    assert!(
        err.server_message().is_some_and(
            |m| m.contains("compute group cg1 needs a storage-compute separated cluster")
        ),
        "{err}"
    );
    assert!(sim.backends().is_empty());
    // Backends of such an FE belong to no group.
    client.add_backend(BE, 9050).await.unwrap();
    let be = &client.show_backends().await.unwrap()[0];
    assert_eq!(
        (be.compute_group_name(), be.compute_group_id()),
        (None, None)
    );
}

#[tokio::test]
async fn cloud_mode_refuses_cancel_decommission_and_modify_backend() {
    let (sim, client) = start_cloud().await;
    let host = cg_host("cg1", 0);
    sim.register_backend_in_group(&host, 9050, "cg1").unwrap();
    client.decommission_backend(&host, 9050).await.unwrap();
    let err = client.cancel_decommission(&host, 9050).await.unwrap_err();
    assert_eq!(
        err.server_message(),
        Some("errCode = 2, detailMessage = Unsupported operation")
    );
    let err = client
        .set_backend_query_load(&host, 9050, true, true)
        .await
        .unwrap_err();
    assert_eq!(
        err.server_message(),
        Some("errCode = 2, detailMessage = Modifying backends is not supported in cloud mode")
    );
    assert!(sim.backend(&host, 9050).is_some_and(|b| b.decommissioned));
}

#[tokio::test]
async fn a_compute_group_backend_is_decommissioned_then_dropped() {
    let (sim, client) = start_cloud().await;
    sim.set_drain_rate(40.0);
    let (a, b, other) = (cg_host("cg1", 0), cg_host("cg1", 1), cg_host("cg2", 0));
    sim.register_backend_in_group(&a, 9050, "cg1").unwrap();
    sim.register_backend_in_group(&b, 9050, "cg1").unwrap();
    sim.register_backend_in_group(&other, 9050, "cg2").unwrap();
    sim.set_tablets(&b, 9050, 8);
    sim.set_tablets(&a, 9050, 1000);

    // The highest ordinal drains, and stays listed until dropped: cloud
    // mode never drops a decommissioned BE by itself (SystemHandler.java,
    // CloudTabletRebalancer.java; test_cloud_decommission.groovy).
    client.decommission_backend(&b, 9050).await.unwrap();
    let be = client
        .show_backends()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.host == b)
        .expect("still draining");
    assert!(be.decommissioned && be.tablet_num > 0);
    assert_eq!(be.compute_group_name(), Some("cg1"));
    let started = Instant::now();
    while client
        .show_backends()
        .await
        .unwrap()
        .iter()
        .any(|x| x.host == b && x.tablet_num > 0)
    {
        assert!(started.elapsed() < Duration::from_secs(5), "never drained");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let drained = sim.backend(&b, 9050).expect("listed until dropped");
    assert!(drained.decommissioned && drained.tablet_num == 0);
    client.drop_backend(&b, 9050, true).await.unwrap();
    assert_eq!(sim.backends_in_group("cg1").len(), 1);
    // A second DROPP: Doris's words for a backend it does not have.
    let err = client.drop_backend(&b, 9050, true).await.unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("backend does not exists")),
        "{err}"
    );

    // The next one is decommissioned, then dropped before it has drained.
    client.decommission_backend(&a, 9050).await.unwrap();
    assert!(sim.backend(&a, 9050).is_some_and(|x| x.decommissioned));
    let err = client.drop_backend(&a, 9050, false).await.unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("use DROPP instead of DROP")),
        "{err}"
    );
    client.drop_backend(&a, 9050, true).await.unwrap();
    assert!(sim.backends_in_group("cg1").is_empty());

    // The other group is untouched.
    let bes = client.show_backends().await.unwrap();
    assert_eq!(bes.len(), 1);
    assert_eq!(bes[0].compute_group_name(), Some("cg2"));
    assert!(!bes[0].decommissioned);
}

#[tokio::test]
async fn dropping_all_backends_of_a_compute_group() {
    let (sim, client) = start_cloud().await;
    for i in 0..3 {
        sim.register_backend_in_group(&cg_host("cg1", i), 9050, "cg1")
            .unwrap();
    }
    for i in 0..2 {
        sim.register_backend_in_group(&cg_host("cg2", i), 9050, "cg2")
            .unwrap();
    }
    let cg2_id = sim.compute_group_id("cg2").unwrap();

    let cg2: Vec<_> = client
        .show_backends()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.compute_group_name() == Some("cg2"))
        .collect();
    assert_eq!(cg2.len(), 2);
    for be in &cg2 {
        assert_eq!(be.compute_group_id(), Some(cg2_id.as_str()));
        client
            .drop_backend(&be.host, be.heartbeat_port, true)
            .await
            .unwrap();
    }
    let left = client.show_backends().await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|b| b.compute_group_name() == Some("cg1")));
    assert_eq!(
        sim.compute_group_sizes().into_iter().collect::<Vec<_>>(),
        [("cg1".to_string(), 3)]
    );

    // A group coming back keeps its id.
    client
        .add_backend_to_compute_group(&cg_host("cg2", 0), 9050, "cg2")
        .await
        .unwrap();
    let back = sim.backend(&cg_host("cg2", 0), 9050).unwrap();
    assert_eq!(back.compute_group_id.as_deref(), Some(cg2_id.as_str()));
}

#[tokio::test]
async fn modifies_backend_query_and_load_flags() {
    let (sim, client) = start().await;
    sim.register_backend(BE, 9050).unwrap();

    client
        .set_backend_query_load(BE, 9050, true, false)
        .await
        .unwrap();
    let be = sim.backend(BE, 9050).unwrap();
    assert!(be.query_disabled && !be.load_disabled);
    let seen = &client.show_backends().await.unwrap()[0];
    assert_eq!(
        (seen.query_disabled, seen.load_disabled),
        (Some(true), Some(false))
    );

    client
        .set_backend_query_load(BE, 9050, true, true)
        .await
        .unwrap();
    let seen = &client.show_backends().await.unwrap()[0];
    assert_eq!(
        (seen.query_disabled, seen.load_disabled),
        (Some(true), Some(true))
    );

    client
        .set_backend_query_load(BE, 9050, false, false)
        .await
        .unwrap();
    let be = sim.backend(BE, 9050).unwrap();
    assert!(!be.query_disabled && !be.load_disabled);

    assert_eq!(
        sim.statements()[0],
        "ALTER SYSTEM MODIFY BACKEND \"127.0.0.1:9050\" SET (\"disable_query\" = \"true\", \"disable_load\" = \"false\")"
    );
    let err = client
        .set_backend_query_load(BE, 9999, true, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Backend does not exist"), "{err}");
}

#[tokio::test]
async fn adds_and_drops_followers_and_observers() {
    let (sim, client) = start().await;
    client.add_follower("fe-1.doris-fe", 9010).await.unwrap();
    client.add_observer("fe-2.doris-fe", 9010).await.unwrap();
    let fes = client.show_frontends().await.unwrap();
    let roles: Vec<(&str, &FrontendRole)> =
        fes.iter().map(|f| (f.host.as_str(), &f.role)).collect();
    assert_eq!(
        roles,
        [
            ("127.0.0.1", &FrontendRole::Follower),
            ("fe-1.doris-fe", &FrontendRole::Follower),
            ("fe-2.doris-fe", &FrontendRole::Observer),
        ]
    );
    assert!(!fes[1].alive && !fes[1].join, "not started yet");
    sim.set_frontend_alive("fe-1.doris-fe", 9010, true);
    let fes = client.show_frontends().await.unwrap();
    assert!(fes[1].alive && fes[1].join);

    let err = client
        .add_follower("fe-1.doris-fe", 9010)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = client
        .drop_observer("fe-1.doris-fe", 9010)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("OBSERVER does not exist"), "{err}");
    let err = client.drop_follower("127.0.0.1", 9010).await.unwrap_err();
    assert!(
        err.to_string().contains("can not drop current master"),
        "{err}"
    );

    client.drop_follower("fe-1.doris-fe", 9010).await.unwrap();
    client.drop_observer("fe-2.doris-fe", 9010).await.unwrap();
    assert_eq!(sim.frontends().len(), 1);
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let sim = FeSim::start(FeSimConfig {
        password: "Right-Pass-123".to_string(),
        ..FeSimConfig::default()
    })
    .await;
    let port = sim.addr().port();
    let wrong = FeClient::with_config(
        FeEndpoint::new("127.0.0.1")
            .with_port(port)
            .with_credentials("root", "Wrong-Pass-456"),
        quick(),
    );
    let err = wrong.show_backends().await.unwrap_err();
    assert!(
        matches!(err.kind, FeErrorKind::AccessDenied { ref user, .. } if user == "root"),
        "{err:?}"
    );
    assert_eq!(err.attempts, 1, "a refused login is not retried");
    assert!(!err.is_transient());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("Wrong-Pass-456"), "{text}");
        assert!(!text.contains("Right-Pass-123"), "{text}");
    }
    let text = err.to_string();
    assert!(text.contains("access denied for user `root`"), "{text}");
    assert!(text.contains("SHOW BACKENDS"), "{text}");

    let no_password = FeClient::with_config(FeEndpoint::new("127.0.0.1").with_port(port), quick());
    assert!(matches!(
        no_password.show_backends().await.unwrap_err().kind,
        FeErrorKind::AccessDenied { .. }
    ));
    let other_user = FeClient::with_config(
        FeEndpoint::new("127.0.0.1")
            .with_port(port)
            .with_credentials("admin", "Right-Pass-123"),
        quick(),
    );
    assert!(matches!(
        other_user.show_backends().await.unwrap_err().kind,
        FeErrorKind::AccessDenied { .. }
    ));

    let right = FeClient::with_config(
        FeEndpoint::new("127.0.0.1")
            .with_port(port)
            .with_credentials("root", "Right-Pass-123"),
        quick(),
    );
    assert!(right.show_backends().await.unwrap().is_empty());
    assert_eq!(
        sim.statements(),
        ["SHOW BACKENDS"],
        "only the good login ran it"
    );
}

#[tokio::test]
async fn fe_down_is_a_timely_error() {
    let (sim, client) = start().await;
    sim.set_down(true);
    let started = Instant::now();
    let err = client.show_backends().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_transient(), "{err}");
    assert!(
        matches!(
            err.kind,
            FeErrorKind::Connect(_) | FeErrorKind::ConnectionLost(_)
        ),
        "{err:?}"
    );
    assert_eq!(err.attempts, 3, "tried once and retried twice");

    sim.set_down(false);
    assert!(client.show_backends().await.unwrap().is_empty());
}

#[tokio::test]
async fn nothing_listening_is_a_timely_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = FeClient::with_config(FeEndpoint::new("127.0.0.1").with_port(port), quick());
    let started = Instant::now();
    let err = client.show_frontends().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err.kind, FeErrorKind::Connect(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_hanging_fe_hits_the_connect_timeout() {
    let sim = FeSim::start(FeSimConfig::default()).await;
    sim.set_unresponsive(true);
    let client = FeClient::with_config(
        FeEndpoint::new("127.0.0.1").with_port(sim.addr().port()),
        FeClientConfig {
            connect_timeout: Duration::from_millis(300),
            retries: 1,
            ..quick()
        },
    );
    let started = Instant::now();
    let err = client.show_backends().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err.kind,
        FeErrorKind::ConnectTimeout(Duration::from_millis(300))
    );
    assert_eq!(err.attempts, 2);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_short_outage_is_ridden_out_by_retries() {
    let (sim, _) = start().await;
    let client = FeClient::with_config(
        FeEndpoint::new("127.0.0.1").with_port(sim.addr().port()),
        FeClientConfig {
            retries: 4,
            retry_backoff: Duration::from_millis(100),
            ..quick()
        },
    );
    sim.register_backend(BE, 9050).unwrap();
    sim.set_down(true);
    let sim = std::sync::Arc::new(sim);
    let back = {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            sim.set_down(false);
        })
    };
    // Writes are retried too while nothing was sent.
    client
        .set_backend_query_load(BE, 9050, true, true)
        .await
        .unwrap();
    back.await.unwrap();
    assert!(sim.backend(BE, 9050).unwrap().query_disabled);
    assert_eq!(sim.statements().len(), 1);
}

#[tokio::test]
async fn a_write_cut_off_mid_statement_is_not_sent_again() {
    let (sim, client) = start().await;
    sim.register_backend(BE, 9050).unwrap();
    sim.set_delay(Duration::from_millis(300));
    let sim = std::sync::Arc::new(sim);
    let cut = {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sim.set_down(true);
        })
    };
    let err = client.decommission_backend(BE, 9050).await.unwrap_err();
    cut.await.unwrap();
    assert!(
        matches!(err.kind, FeErrorKind::ConnectionLost(_)),
        "{err:?}"
    );
    assert_eq!(err.attempts, 1);
    assert_eq!(
        sim.statements(),
        ["ALTER SYSTEM DECOMMISSION BACKEND \"127.0.0.1:9050\""]
    );
}

#[tokio::test]
async fn an_injected_sql_error_names_the_statement() {
    let (sim, client) = start().await;
    sim.register_backend(BE, 9050).unwrap();
    sim.fail_next(
        1,
        "Failed to find enough backend, please check the replication num",
    );

    let err = client.decommission_backend(BE, 9050).await.unwrap_err();
    assert_eq!(
        err.statement,
        "ALTER SYSTEM DECOMMISSION BACKEND \"127.0.0.1:9050\""
    );
    assert_eq!(err.attempts, 1);
    match &err.kind {
        FeErrorKind::Server {
            code,
            state,
            message,
        } => {
            assert_eq!((*code, state.as_str()), (1105, "HY000"));
            assert_eq!(
                message,
                "errCode = 2, detailMessage = Failed to find enough backend, please check the replication num"
            );
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("`ALTER SYSTEM DECOMMISSION BACKEND \"127.0.0.1:9050\"`")
            && text.contains("ERROR 1105 (HY000)")
            && text.contains("Failed to find enough backend"),
        "{text}"
    );
    assert!(!sim.backend(BE, 9050).unwrap().decommissioned);

    // Reads are not retried on an SQL error either; the next call is fine.
    sim.fail_next(1, "boom");
    let err = client.show_backends().await.unwrap_err();
    assert_eq!(
        err.server_message(),
        Some("errCode = 2, detailMessage = boom")
    );
    assert_eq!(client.show_backends().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_answer_hits_the_query_timeout() {
    let (sim, _) = start().await;
    sim.set_delay(Duration::from_secs(3));
    let client = FeClient::with_config(
        FeEndpoint::new("127.0.0.1").with_port(sim.addr().port()),
        FeClientConfig {
            query_timeout: Duration::from_millis(300),
            ..quick()
        },
    );
    let started = Instant::now();
    let err = client.show_frontends().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err.kind,
        FeErrorKind::QueryTimeout(Duration::from_millis(300))
    );
    assert_eq!(err.attempts, 1, "a slow FE is not asked again");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(err.to_string().contains("`SHOW FRONTENDS`"), "{err}");

    sim.set_delay(Duration::from_millis(50));
    assert_eq!(client.show_frontends().await.unwrap().len(), 1);
}

/// What a MySQL client with default settings sends on its own: session
/// variables on connect, `SET NAMES`, `SELECT @@version_comment`; and the
/// simulator's answers to `SHOW PROC` and to what it does not know.
#[tokio::test]
async fn a_plain_mysql_client_can_talk_to_it() {
    use mysql_async::prelude::Queryable;

    let (sim, _) = start().await;
    sim.register_backend(BE, 9050).unwrap();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(sim.addr().port())
        .user(Some("root"));
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    conn.query_drop("SET NAMES utf8mb4").await.unwrap();
    let comment: Option<String> = conn
        .query_first("SELECT @@version_comment LIMIT 1")
        .await
        .unwrap();
    assert!(comment.unwrap().starts_with("Doris version"));
    let (one, packet): (i64, i64) = conn
        .query_first("SELECT 1, @@session.max_allowed_packet")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((one, packet), (1, 16_777_216));

    let rows: Vec<mysql_async::Row> = conn.query("SHOW PROC '/backends'").await.unwrap();
    let row = &rows[0];
    let columns: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(&columns[..3], ["BackendId", "Host", "HeartbeatPort"]);
    assert_eq!(row.get::<String, _>("Host").unwrap(), BE);

    let err = conn.query_drop("SELEC nonsense").await.unwrap_err();
    assert!(err.to_string().contains("Syntax error"), "{err}");
    let err = conn
        .query_drop("ALTER SYSTEM ADD BACKEND 127.0.0.1:9050")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Syntax error"), "{err}");
    // The connection survives errors.
    conn.ping().await.unwrap();
    conn.disconnect().await.unwrap();

    // The connect-time queries are in the log, before ours.
    let log = sim.statements();
    assert!(log[0].starts_with("SELECT @@"), "{log:?}");
    assert!(log.contains(&"SET NAMES utf8mb4".to_string()), "{log:?}");
}

#[tokio::test]
async fn the_disaggregated_entrypoints_statements_are_understood() {
    use mysql_async::prelude::Queryable;

    let (sim, _) = start_cloud().await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(sim.addr().port())
        .user(Some("root"));
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    // As the BE entrypoint of the storage-compute separated image words it.
    let host = cg_host("cg1", 0);
    conn.query_drop(format!(
        "ALTER SYSTEM ADD BACKEND \"{host}:9050\" properties(\"tag.compute_group_name\"=\"cg1\");"
    ))
    .await
    .unwrap();
    // Doris 3.0.0 named the group a cloud cluster.
    let old = cg_host("cg2", 0);
    conn.query_drop(format!(
        "ALTER SYSTEM ADD BACKEND '{old}:9050' PROPERTIES ('tag.cloud_cluster_name' = 'cg2')"
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String)> = conn
        .query("SHOW BACKENDS")
        .await
        .unwrap()
        .into_iter()
        .map(|row: mysql_async::Row| {
            (
                row.get::<String, _>("Host").unwrap(),
                row.get::<String, _>("Tag").unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 2);
    let cg1_id = sim.compute_group_id("cg1").unwrap();
    assert_eq!(rows[0].0, host);
    assert!(
        rows[0].1.starts_with("{\"cloud_unique_id\" : \"1:"),
        "{}",
        rows[0].1
    );
    assert!(
        rows[0].1.ends_with(&format!(
            "\"compute_group_status\" : \"NORMAL\", \"private_endpoint\" : \"\", \"compute_group_name\" : \"cg1\", \"location\" : \"default\", \"public_endpoint\" : \"\", \"compute_group_id\" : \"{cg1_id}\"}}"
        )),
        "{}",
        rows[0].1
    );
    assert_eq!(sim.backends_in_group("cg2").len(), 1);

    let err = conn
        .query_drop(
            "ALTER SYSTEM ADD BACKEND \"h:9050\" PROPERTIES (\"tag.compute_group\" = \"x\")",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown properties"), "{err}");
    let err = conn
        .query_drop("ALTER SYSTEM ADD BACKEND \"h:9050\" PROPERTIES")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Syntax error"), "{err}");
    assert_eq!(sim.backends().len(), 2);
    conn.disconnect().await.unwrap();
}

/// A client of `sim` over TLS, trusting `ca` and presenting `client`'s
/// certificate.
fn tls_client(sim: &FeSim, ca: &fesim::TestPki, client: &fesim::TestPki) -> FeClient {
    let tls = doris_operator::doris::FeTls::new(
        ca.ca_pem.clone().into_bytes(),
        client.client_cert_pem.clone().into_bytes(),
        client.client_key_pem.clone().into_bytes(),
    )
    .expect("good PEM");
    FeClient::with_config(
        FeEndpoint::new("127.0.0.1")
            .with_port(sim.addr().port())
            .with_tls(tls),
        quick(),
    )
}

async fn tls_sim(pki: &fesim::TestPki) -> FeSim {
    FeSim::start(FeSimConfig {
        tls: Some(pki.server_config()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn over_tls_with_the_cas_and_a_client_certificate() {
    let pki = fesim::TestPki::new("doris");
    let sim = tls_sim(&pki).await;
    let client = tls_client(&sim, &pki, &pki);
    let frontends = client.show_frontends().await.expect("TLS login works");
    assert_eq!(frontends.len(), 1);
    client.add_backend("10.0.0.7", 9050).await.unwrap();
    assert_eq!(sim.tls_sessions(), 2, "both calls went over TLS");
    assert!(sim.tls_failures().is_empty());

    // The simulator, like an FE with TLS required, refuses plain MySQL.
    let plain = client_for(&sim).show_frontends().await.unwrap_err();
    assert!(plain.to_string().contains("insecure transport"), "{plain}");
}

#[tokio::test]
async fn an_fe_certificate_the_ca_did_not_sign_is_refused() {
    let pki = fesim::TestPki::new("doris");
    let stranger = fesim::TestPki::new("stranger");
    let sim = tls_sim(&stranger).await;
    // The FE presents a certificate of another CA.
    let e = tls_client(&sim, &pki, &pki)
        .show_frontends()
        .await
        .unwrap_err();
    assert!(matches!(e.kind, FeErrorKind::Tls(_)), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(!e.is_transient(), "a wrong certificate is not retried");
    assert_eq!(e.attempts, 1);
    assert!(sim.statements().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_fe_refuses_a_client_certificate_of_another_ca() {
    let pki = fesim::TestPki::new("doris");
    let stranger = fesim::TestPki::new("stranger");
    let sim = tls_sim(&pki).await;
    let e = tls_client(&sim, &pki, &stranger)
        .show_frontends()
        .await
        .unwrap_err();
    assert!(sim.statements().is_empty(), "{e}");
    assert_eq!(sim.tls_sessions(), 0, "{e}");
}

#[tokio::test]
async fn a_tls_client_never_falls_back_to_plain_mysql() {
    let pki = fesim::TestPki::new("doris");
    let sim = FeSim::start(FeSimConfig::default()).await;
    let e = tls_client(&sim, &pki, &pki)
        .show_frontends()
        .await
        .unwrap_err();
    assert!(matches!(e.kind, FeErrorKind::Tls(_)), "{e}");
    assert!(e.to_string().contains("does not offer TLS"), "{e}");
    assert!(sim.statements().is_empty());
}

#[test]
fn bad_pem_is_told_apart_by_which_input_it_is() {
    use doris_operator::doris::FeTls;
    let pki = fesim::TestPki::new("doris");
    let (ca, cert, key) = (
        pki.ca_pem.as_bytes().to_vec(),
        pki.client_cert_pem.as_bytes().to_vec(),
        pki.client_key_pem.as_bytes().to_vec(),
    );
    assert!(FeTls::new(ca.clone(), cert.clone(), key.clone()).is_ok());
    let e = FeTls::new(b"not a certificate".to_vec(), cert.clone(), key.clone()).unwrap_err();
    assert_eq!(e.which, "ca");
    let e = FeTls::new(ca.clone(), key.clone(), key.clone()).unwrap_err();
    assert_eq!(e.which, "cert");
    let e = FeTls::new(ca, cert.clone(), cert).unwrap_err();
    assert_eq!(e.which, "key");
}
