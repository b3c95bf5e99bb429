//! The input files of the README's walkthrough ("A day at the terminal"), which `caihong demo`
//! writes into `DIR/examples`. Their dates count from the day they are written, so every step
//! works whenever it is run: the fine was decided 100 days ago (credit repair needs 90) and is
//! still published, the export's bidding suspension still runs, and the evaluation window is a
//! week ahead. The CA certificates (an SM2 root, an intermediate CA, a bidder's certificate)
//! are the fixed ones of `docs/examples/make-certs.sh`, valid for years.

use std::path::Path;

use anyhow::Context;
use caihong_chaincode::credit::CreditRecordInput;
use caihong_chaincode::experts::extraction::ExtractionRequest;
use chrono::{Days, NaiveDate};
use serde_json::json;

use crate::import::{read_experts, read_rows_on};

/// The subject the README registers, records against and whose certificate it verifies.
pub const SUBJECT: &str = "91150600MA0000015H";
const TENDEREE: &str = "91150600MA0000023C";
const SECOND_BIDDER: &str = "91150600MA00000317";
const AUTHORITY: &str = "鄂尔多斯市发展和改革委员会";
const AUTHORITY_USCC: &str = "11150600MB00000941";
const EXPERTS_EMPLOYER: &str = "91150200MB00000276";
const CA_ROOT: &[u8] = include_bytes!("../../docs/examples/ca-root.pem");
const CA_INTERMEDIATE: &[u8] = include_bytes!("../../docs/examples/ca-intermediate.pem");
const BIDDER_CERT: &[u8] = include_bytes!("../../docs/examples/bidder.pem");

/// The header of the nationwide 双公示 penalty export, in its order.
const PENALTY_HEADER: &str = "行政相对人名称,行政相对人类别,行政相对人代码_1（统一社会信用代码）,\
行政相对人代码_2(工商注册号),行政相对人代码_3(组织机构代码),行政相对人代码_4(税务登记号),\
行政相对人代码_5(事业单位证书号),行政相对人代码_6(社会组织登记证号),法定代表人,法定代表人证件类型,\
法定代表人证件号码,证件类型,证件号码,行政处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,\
罚款金额（万元）,没收违法所得、没收非法财物的金额（万元）,暂扣或吊销证照名称及编号,处罚决定日期,处罚有效期,\
公示截止期,处罚机关,处罚机关统一社会信用代码,数据来源单位,数据来源单位统一社会信用代码,备注";

/// Writes the walkthrough's files into `dir` (created if missing) for an alliance whose
/// requesting member is `requester` and whose other members are `others`; each file is checked
/// by the parser that will read it before it is written.
pub fn write(dir: &Path, today: NaiveDate, others: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("penalty.json", penalty(today)?),
        ("行政处罚.csv", penalty_csv(today)?),
        ("experts.csv", experts_csv()?),
        ("request.json", request(today, others)?),
    ];
    for (name, text) in files {
        write_file(&dir.join(name), text.as_bytes())?;
    }
    write_file(&dir.join("ca-root.pem"), CA_ROOT)?;
    write_file(&dir.join("ca-intermediate.pem"), CA_INTERMEDIATE)?;
    write_file(&dir.join("bidder.pem"), BIDDER_CERT)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn days_from(day: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        day + Days::new(days as u64)
    } else {
        day - Days::new(days.unsigned_abs())
    }
}

/// A violation fined, decided 100 days ago and published for a year: a penalty without a term,
/// so credit repair may end its publication now.
fn penalty(today: NaiveDate) -> anyhow::Result<String> {
    let decided = days_from(today, -100);
    let value = json!({
        "kind": "Violation",
        "subject_uscc": SUBJECT,
        "subject_name": "鄂尔多斯某建设有限公司",
        "document_no": format!("鄂发改罚〔{}〕7号", decided.format("%Y")),
        "violation_type": "未按规定提交投标保证金",
        "legal_basis": "《中华人民共和国招标投标法实施条例》第二十六条",
        "penalty_categories": ["Fine"],
        "content": "罚款二万元",
        "fine_fen": 2_000_000,
        "decision_date": decided.to_string(),
        "penalty_end_date": null,
        "publication_end_date": days_from(decided, 364).to_string(),
        "authority_name": AUTHORITY,
        "authority_uscc": AUTHORITY_USCC,
        "severity": "General",
        "rating": null
    });
    serde_json::from_value::<CreditRecordInput>(value.clone()).context("walkthrough penalty")?;
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// Two rows of a 双公示 export, with its date formats: a fine and a six-month bidding
/// suspension (暂停投标资格) of the README's subject, and a disqualification (取消投标资格) of
/// another subject.
fn penalty_csv(today: NaiveDate) -> anyhow::Result<String> {
    let first = days_from(today, -30);
    let second = days_from(today, -10);
    let slash = |d: NaiveDate| d.format("%Y/%m/%d").to_string();
    let chinese = |d: NaiveDate| d.format("%Y年%m月%d日").to_string();
    let rows = [
        [
            "鄂尔多斯某建设有限公司",
            SUBJECT,
            "李四",
            &format!("鄂发改罚〔{}〕12号", first.format("%Y")),
            "提供虚假材料",
            "投标文件中提供虚假业绩证明",
            "《中华人民共和国招标投标法》第五十四条",
            "罚款",
            "罚款五千元，暂停投标资格六个月",
            "0.5",
            &slash(first),
            &slash(days_from(first, 182)),
            &slash(days_from(first, 364)),
        ],
        [
            "鄂尔多斯某路桥工程有限公司",
            SECOND_BIDDER,
            "王五",
            &format!("鄂发改罚〔{}〕15号", second.format("%Y")),
            "串通投标",
            "与其他投标人相互约定抬高投标报价",
            "《中华人民共和国招标投标法》第五十三条",
            "罚款",
            "罚款一万二千元，取消投标资格一年",
            "1.2",
            &chinese(second),
            &chinese(days_from(second, 364)),
            &chinese(days_from(second, 364)),
        ],
    ];
    let mut text = format!("{PENALTY_HEADER}\n");
    for [
        name,
        uscc,
        rep,
        doc,
        kind,
        facts,
        basis,
        category,
        content,
        fine,
        decided,
        end,
        shown,
    ] in rows
    {
        text += &format!(
            "{name},法人及非法人组织,{uscc},,,,,,{rep},,,,,{doc},{kind},{facts},{basis},{category},\
             {content},{fine},,,{decided},{end},{shown},{AUTHORITY},{AUTHORITY_USCC},{AUTHORITY},\
             {AUTHORITY_USCC},\n"
        );
    }
    let (_, bad) = read_rows_on(
        &text,
        caihong_chaincode::credit::CreditKind::Violation,
        caihong_chaincode::credit::Severity::General,
        today,
    )?;
    anyhow::ensure!(bad.is_empty(), "walkthrough CSV: {:?}", bad.first());
    Ok(text)
}

/// Five experts (评标专家) in specialty A010101 for a member's pool.
fn experts_csv() -> anyhow::Result<String> {
    let names = ["高建华", "刘振宇", "孙丽萍", "马国强", "周文博"];
    let mut text = "身份证号,姓名,专业代码,职称,工作单位统一社会信用代码\n".to_string();
    for (i, name) in names.iter().enumerate() {
        text += &format!(
            "15020319{}0{}15{}X,{name},A010101,高级工程师,{EXPERTS_EMPLOYER}\n",
            66 + i,
            i + 1,
            210 + i
        );
    }
    let (_, bad) = read_experts(&text)?;
    anyhow::ensure!(bad.is_empty(), "walkthrough experts: {:?}", bad.first());
    Ok(text)
}

/// A remote cross-region (远程异地) evaluation a week ahead, 09:00–17:00 Beijing time: five
/// primaries and two backups, at least two from outside the requester.
fn request(today: NaiveDate, others: &[String]) -> anyhow::Result<String> {
    let day = days_from(today, 7);
    let beijing_ms = |hour: u32| {
        let utc = day.and_hms_opt(hour, 0, 0).expect("a valid hour") - chrono::Duration::hours(8);
        utc.and_utc().timestamp_millis()
    };
    let value = json!({
        "project_code": format!("ORDOS-{}-0815", day.format("%Y")),
        "window_start": beijing_ms(9),
        "window_end": beijing_ms(17),
        "requirements": [{ "specialty": "A010101", "count": 5, "backups": 2 }],
        "tenderee_uscc": TENDEREE,
        "bidder_usccs": [SUBJECT, SECOND_BIDDER],
        "remote": { "members": others, "min_outside": 2 },
        "commitment": null
    });
    serde_json::from_value::<ExtractionRequest>(value.clone()).context("walkthrough request")?;
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files are written and parse, on any day: dates roll over months and years.
    #[test]
    fn the_walkthrough_files_parse_on_any_day() {
        let dir = tempfile::tempdir().unwrap();
        for day in ["2026-12-02", "2027-01-05", "2028-02-29"] {
            let today: NaiveDate = day.parse().unwrap();
            write(dir.path(), today, &["baotou".into(), "yinchuan".into()]).unwrap();
            let penalty: CreditRecordInput = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("penalty.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(penalty.subject_uscc, SUBJECT);
            let csv = std::fs::read_to_string(dir.path().join("行政处罚.csv")).unwrap();
            let (rows, bad) = read_rows_on(
                &csv,
                caihong_chaincode::credit::CreditKind::Violation,
                caihong_chaincode::credit::Severity::General,
                today,
            )
            .unwrap();
            assert_eq!((rows.len(), bad.len()), (2, 0), "{day}");
            assert!(dir.path().join("bidder.pem").exists());
        }
    }
}
