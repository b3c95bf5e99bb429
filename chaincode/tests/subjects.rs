//! Market subjects: USCC checks, home-member rules, versions and hand-over.

use caihong_chaincode::members::Role;
use caihong_chaincode::sandbox::Sandbox;
use caihong_chaincode::subjects::{self, SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
use caihong_chaincode::{Action, ErrorCode, TxOutput, TxStatus, Uscc};

const BIDDER: &str = "91150100MA0N12340B";

fn info(uscc: &str, name: &str) -> SubjectInfo {
    SubjectInfo {
        uscc: uscc.into(),
        name: name.into(),
        roles: [SubjectRole::Bidder].into(),
        legal_representative: "张三".into(),
        qualifications: vec![],
        status: SubjectStatus::Active,
    }
}

#[test]
fn register_update_history_and_hand_over() {
    let mut sb = Sandbox::new(4);
    let reg = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let r = sb.run(
        &reg,
        Action::Subject(SubjectAction::Register(info(BIDDER, "呼和浩特建工集团"))),
    );
    assert_eq!(
        r.status,
        TxStatus::Success(TxOutput::SubjectVersion {
            uscc: BIDDER.into(),
            version: 1
        })
    );
    let uscc = Uscc::parse(BIDDER).unwrap();
    let s = subjects::subject(&sb.state, &uscc).unwrap();
    assert_eq!(s.home.as_str(), "hohhot");
    assert_eq!(s.region_code, "150100");

    // Registering again fails, naming who has it.
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::Register(info(BIDDER, "x"))),
    );
    assert_eq!(e.code, ErrorCode::AlreadyExists);
    assert!(e.message.contains("hohhot"));

    // Another member cannot update it.
    let other = sb.operator("baotou", "reg", &[Role::Registrar]);
    let e = sb.run_err(
        &other,
        Action::Subject(SubjectAction::Update(info(BIDDER, "改名"))),
    );
    assert_eq!(e.code, ErrorCode::NotHomeMember);

    let mut updated = info(BIDDER, "呼和浩特建工集团有限公司");
    updated.roles.insert(SubjectRole::Supplier);
    assert!(
        sb.run(&reg, Action::Subject(SubjectAction::Update(updated)))
            .is_success()
    );
    let r = sb.run(
        &reg,
        Action::Subject(SubjectAction::HandOver {
            uscc: BIDDER.into(),
            to: "baotou".into(),
        }),
    );
    assert!(r.is_success(), "{r:?}");
    // Now baotou is home and hohhot no longer may update.
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::Update(info(BIDDER, "x"))),
    );
    assert_eq!(e.code, ErrorCode::NotHomeMember);
    assert!(
        sb.run(
            &other,
            Action::Subject(SubjectAction::Update(info(BIDDER, "包头接管")))
        )
        .is_success()
    );

    let history = subjects::history(&sb.state, &uscc);
    let versions: Vec<(u32, &str, &str)> = history
        .iter()
        .map(|s| (s.version, s.name.as_str(), s.home.as_str()))
        .collect();
    assert_eq!(
        versions,
        vec![
            (1, "呼和浩特建工集团", "hohhot"),
            (2, "呼和浩特建工集团有限公司", "hohhot"),
            (3, "呼和浩特建工集团有限公司", "baotou"),
            (4, "包头接管", "baotou"),
        ]
    );
}

#[test]
fn only_superseded_versions_are_kept_apart_and_old_layouts_still_read() {
    use caihong_chaincode::StateReader;
    use caihong_chaincode::codec::encode;
    use caihong_chaincode::keys;

    let mut sb = Sandbox::new(4);
    let reg = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let uscc = Uscc::parse(BIDDER).unwrap();
    let history_keys = |sb: &Sandbox| sb.state.scan_prefix(&keys::subject_versions(&uscc)).len();
    assert!(
        sb.run(
            &reg,
            Action::Subject(SubjectAction::Register(info(BIDDER, "一")))
        )
        .is_success()
    );
    // A registration writes the current version only.
    assert_eq!(history_keys(&sb), 0);
    assert!(
        sb.run(
            &reg,
            Action::Subject(SubjectAction::Update(info(BIDDER, "二")))
        )
        .is_success()
    );
    assert_eq!(history_keys(&sb), 1);
    let names = |sb: &Sandbox| {
        subjects::history(&sb.state, &uscc)
            .into_iter()
            .map(|s| (s.version, s.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&sb), vec![(1, "一".into()), (2, "二".into())]);

    // A chain written before this layout also holds the current version under `subj_v/`:
    // it is listed once.
    let current = subjects::subject(&sb.state, &uscc).unwrap();
    sb.state.entries.insert(
        keys::subject_version(&uscc, current.version),
        encode(&current),
    );
    assert_eq!(history_keys(&sb), 2);
    assert_eq!(names(&sb), vec![(1, "一".into()), (2, "二".into())]);
}

#[test]
fn bad_uscc_says_which_check_failed() {
    let mut sb = Sandbox::new(4);
    let reg = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::Register(info("91150100MA0N12341B", "x"))),
    );
    assert_eq!(e.code, ErrorCode::InvalidUscc);
    assert!(
        e.message.contains("organization code check"),
        "{}",
        e.message
    );
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::Register(info("91150100MA0N12340C", "x"))),
    );
    assert_eq!(e.code, ErrorCode::InvalidUscc);
    assert!(e.message.contains("USCC check character"), "{}", e.message);
}

#[test]
fn lower_case_uscc_is_stored_upper_case() {
    let mut sb = Sandbox::new(4);
    let reg = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let r = sb.run(
        &reg,
        Action::Subject(SubjectAction::Register(info(&BIDDER.to_lowercase(), "x"))),
    );
    assert!(r.is_success());
    assert!(subjects::subject(&sb.state, &Uscc::parse(BIDDER).unwrap()).is_some());
}

#[test]
fn required_fields_and_roles() {
    let mut sb = Sandbox::new(4);
    let credit_only = sb.operator("hohhot", "credit", &[Role::Credit]);
    let e = sb.run_err(
        &credit_only,
        Action::Subject(SubjectAction::Register(info(BIDDER, "x"))),
    );
    assert_eq!(e.code, ErrorCode::Unauthorized);
    let reg = sb.operator("hohhot", "reg", &[Role::Registrar]);
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::Register(info(BIDDER, "  "))),
    );
    assert_eq!(e.code, ErrorCode::InvalidInput);
    let mut no_roles = info(BIDDER, "x");
    no_roles.roles.clear();
    let e = sb.run_err(&reg, Action::Subject(SubjectAction::Register(no_roles)));
    assert!(e.message.contains("at least one role"));
    let e = sb.run_err(
        &reg,
        Action::Subject(SubjectAction::HandOver {
            uscc: BIDDER.into(),
            to: "baotou".into(),
        }),
    );
    assert_eq!(e.code, ErrorCode::NotFound);
}
