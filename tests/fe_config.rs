//! The FE simulator's configuration statements and privilege checks, as
//! the Doris release and mode it plays take them, through the operator's
//! FE client.

mod fesim;

use doris_operator::doris::{FeClient, FeEndpoint, FeErrorKind};
use fesim::{FeSim, FeSimConfig, Privilege, SimFrontend, SimUser};

const FES: [&str; 3] = ["fe-0.fe", "fe-1.fe", "fe-2.fe"];

/// A simulator with three FEs playing `version`, and user `ops` with
/// `privileges`.
async fn three_fes(config: FeSimConfig, privileges: &[Privilege]) -> FeSim {
    FeSim::start(FeSimConfig {
        frontends: FES
            .iter()
            .map(|h| SimFrontend::new(h, 9010, "FOLLOWER"))
            .collect(),
        users: vec![SimUser::new("ops", "pw", privileges)],
        ..config
    })
    .await
}

fn client(addr: std::net::SocketAddr, user: &str, password: &str) -> FeClient {
    FeClient::new(
        FeEndpoint::new("127.0.0.1")
            .with_port(addr.port())
            .with_credentials(user, password),
    )
}

fn at(version: &str) -> FeSimConfig {
    FeSimConfig {
        version: version.into(),
        ..FeSimConfig::default()
    }
}

fn server_error(e: doris_operator::doris::FeError) -> (u16, String) {
    match e.kind {
        FeErrorKind::Server { code, message, .. } => (code, message),
        other => panic!("not an SQL error: {other:?}"),
    }
}

#[tokio::test]
async fn set_frontend_config_sets_the_fe_it_reaches_only() {
    let sim = three_fes(at("doris-2.1.4-rc01-sim"), &[]).await;
    let fe1 = client(sim.frontend_addr(FES[1]), "root", "");
    fe1.set_frontend_config("qe_slow_log_ms", "3000")
        .await
        .unwrap();
    assert_eq!(
        sim.setting_on(FES[1], "qe_slow_log_ms").as_deref(),
        Some("3000")
    );
    assert_eq!(
        sim.setting_on(FES[0], "qe_slow_log_ms").as_deref(),
        Some("5000")
    );
    assert_eq!(
        sim.setting_on(FES[2], "qe_slow_log_ms").as_deref(),
        Some("5000")
    );
    assert_eq!(sim.config_sets()[0].frontend, FES[1]);
    // A master-only key is forwarded to the master and set there.
    fe1.set_frontend_config("max_running_txn_num_per_db", "2000")
        .await
        .unwrap();
    assert_eq!(
        sim.setting_on(FES[0], "max_running_txn_num_per_db")
            .as_deref(),
        Some("2000")
    );
    assert_eq!(
        sim.setting_on(FES[1], "max_running_txn_num_per_db")
            .as_deref(),
        Some("1000")
    );
}

#[tokio::test]
async fn all_frontends_config_exists_from_2_1_5() {
    for version in ["doris-2.1.4-rc01-sim", "doris-2.1.5-rc01-sim"] {
        let config = at(version);
        let takes_it = config.profile().sets_all_frontends_at_once();
        let sim = three_fes(config, &[]).await;
        let result = client(sim.addr(), "root", "")
            .set_all_frontends_config("qe_slow_log_ms", "3000")
            .await;
        if takes_it {
            result.unwrap();
            for fe in FES {
                assert_eq!(
                    sim.setting_on(fe, "qe_slow_log_ms").as_deref(),
                    Some("3000")
                );
            }
        } else {
            let (code, message) = server_error(result.unwrap_err());
            assert_eq!(code, 1105, "{version}");
            assert!(
                message.starts_with("errCode = 2, detailMessage = Syntax error in line 1:\n")
                    && message.ends_with("\nEncountered: ALL"),
                "{version}: {message}"
            );
            assert!(sim.config_sets().is_empty());
        }
    }
}

#[tokio::test]
async fn statements_check_the_privileges_doris_checks() {
    let sim = three_fes(FeSimConfig::default(), &[Privilege::Node]).await;
    let ops = client(sim.addr(), "ops", "pw");
    let denied = |privileges: &str| {
        format!(
            "errCode = 2, detailMessage = Access denied; you need (at least one of) the ({privileges}) privilege(s) for this operation"
        )
    };
    // NODE is enough for the node statements and SHOW FRONTENDS/BACKENDS.
    ops.show_frontends().await.unwrap();
    ops.show_backends().await.unwrap();
    ops.add_backend("be-0.be", 9050).await.unwrap();
    // Settings need ADMIN.
    let e = server_error(ops.show_frontend_config().await.unwrap_err());
    assert_eq!(e, (1227, denied("ADMIN")));
    // (The statement every release takes.)
    let e = server_error(
        ops.set_frontend_config("qe_slow_log_ms", "1")
            .await
            .unwrap_err(),
    );
    assert_eq!(e, (1227, denied("ADMIN")));

    let admin = three_fes(FeSimConfig::default(), &[Privilege::Admin]).await;
    let ops = client(admin.addr(), "ops", "pw");
    ops.show_frontends().await.unwrap();
    ops.show_frontend_config().await.unwrap();
    let e = server_error(ops.add_backend("be-0.be", 9050).await.unwrap_err());
    assert_eq!(e, (1227, denied("NODE")));

    let none = three_fes(FeSimConfig::default(), &[]).await;
    let e = server_error(
        client(none.addr(), "ops", "pw")
            .show_backends()
            .await
            .unwrap_err(),
    );
    assert_eq!(e, (1227, denied("ADMIN/OPERATOR")));
}

#[tokio::test]
async fn in_cloud_mode_only_root_sets_fe_config() {
    let sim = three_fes(FeSimConfig::cloud(), &[Privilege::Admin, Privilege::Node]).await;
    let e = server_error(
        client(sim.addr(), "ops", "pw")
            .set_all_frontends_config("qe_slow_log_ms", "3000")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e,
        (
            1105,
            "errCode = 2, detailMessage = Unsupported operation".into()
        )
    );
    client(sim.addr(), "root", "")
        .set_all_frontends_config("qe_slow_log_ms", "3000")
        .await
        .unwrap();
    assert_eq!(sim.setting("qe_slow_log_ms").as_deref(), Some("3000"));
}
