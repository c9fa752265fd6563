//! `irtlake anchors tag`: choose anchor questions from the latest calibration.

use anyhow::{Context, Result, bail};
use arrow::array::Array;
use lake::Lake;
use lake::columns::Columns;
use models::calibration::{AnchorCandidate, AnchorRules, select_anchors};
use models::irt::ItemParams;

const LATEST_CALIBRATION_SQL: &str = include_str!("../../sql/anchors/latest_calibration.sql");
const CANDIDATES_SQL: &str = include_str!("../../sql/anchors/candidates.sql");

/// Options of `irtlake anchors tag`.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// How many anchors the bank should hold (1 to 100,000).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 100_000), default_value_t = 50)]
    pub max_candidates: usize,
    /// Drop the existing anchors and choose all anew.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub lake: crate::LakeArgs,
}

/// `irtlake anchors …`
#[derive(Debug, clap::Subcommand)]
pub enum AnchorsCommand {
    /// Tag anchor questions (known parameters from the latest linked calibration of the
    /// `all` bank): enough responses, a ≥ 0.5, |b| ≤ 3, small SEs, spread over the b
    /// range and over topics. Existing anchors are kept unless --replace.
    Tag(TagArgs),
}

/// Runs an `anchors` subcommand.
pub async fn run(lake: &Lake, cmd: AnchorsCommand) -> Result<()> {
    let AnchorsCommand::Tag(args) = cmd;
    let ctx = lake.session()?;
    let latest = lake::runs::query(&ctx, LATEST_CALIBRATION_SQL, vec![]).await?;
    let Some(b) = latest.first().filter(|b| b.num_rows() > 0) else {
        bail!("no calibration of the 'all' bank in the lake yet: run `irtlake calibrate` first");
    };
    let latest = Columns::of(b);
    let run_date = lake::columns::opt_day(latest.days("run_date")?, 0)
        .map(lake::runs::day_str)
        .context("fit_meta: the latest calibration of bank 'all' has no run_date")?;
    let run_id = latest.strings("run_id")?.value(0).to_string();
    let method = latest.strings("linking_method")?.value(0).to_string();
    if method == "none" {
        println!(
            "note: the latest calibration ({run_id}) is unlinked: the anchors chosen now define the scale"
        );
    }
    let rows = lake::runs::query(
        &ctx,
        CANDIDATES_SQL,
        vec![datafusion::scalar::ScalarValue::Utf8(Some(
            run_date.clone(),
        ))],
    )
    .await
    .context("reading the calibration's item parameters")?;
    let mut ids = Vec::new();
    let mut candidates = Vec::new();
    let mut existing = 0usize;
    for b in &rows {
        let cols = Columns::of(b);
        let (id, a, bb, c) = (
            cols.strings("item_id")?,
            cols.f64s("a")?,
            cols.f64s("b")?,
            cols.f64s("c")?,
        );
        let (sa, sb, n) = (
            cols.f64s("se_a")?,
            cols.f64s("se_b")?,
            cols.i64s("n_responses")?,
        );
        let (topic, anc) = (cols.strings("topic_id")?, cols.bools("is_anchor")?);
        for r in 0..b.num_rows() {
            let is_anchor = !anc.is_null(r) && anc.value(r);
            if is_anchor && !args.replace {
                existing += 1;
                continue;
            }
            let opt = |x: &arrow::array::Float64Array| (!x.is_null(r)).then(|| x.value(r));
            ids.push(id.value(r).to_string());
            candidates.push(AnchorCandidate {
                params: ItemParams::new_3pl(a.value(r), bb.value(r), c.value(r)),
                se_a: opt(sa),
                se_b: opt(sb),
                n_responses: n.value(r) as usize,
                group: topic.value(r).to_string(),
            });
        }
    }
    let k = args.max_candidates.saturating_sub(existing);
    let picked = select_anchors(&candidates, k, &AnchorRules::default());
    println!(
        "calibration {run_id} ({method}); {existing} existing anchor(s) kept; choosing {} of {k} wanted from {} candidates",
        picked.len(),
        candidates.len()
    );
    println!(
        "{:<12} {:<14} {:>7} {:>7} {:>6}  why",
        "question", "topic", "a", "b", "c"
    );
    let mut chosen = Vec::new();
    for (i, why) in &picked {
        let c = &candidates[*i];
        println!(
            "{:<12} {:<14} {:>7.3} {:>7.3} {:>6.3}  {why}",
            ids[*i], c.group, c.params.a, c.params.b, c.params.c
        );
        chosen.push((ids[*i].clone(), c.params.a, c.params.b, c.params.c));
    }
    let update = lake::ingest::set_anchors(lake, &chosen, args.replace).await?;
    println!(
        "tagged {}, kept {}, untagged {}",
        update.tagged, update.kept, update.untagged
    );
    Ok(())
}
