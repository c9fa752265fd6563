//! `irtlake anchors tag`: choose anchor questions from the latest calibration.

use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use lake::Lake;
use models::calibration::{AnchorCandidate, AnchorRules, select_anchors};
use models::irt::ItemParams;

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
    let latest = ctx
        .sql(
            "SELECT run_date, run_id, linking_method FROM fit_meta WHERE bank = 'all' \
             ORDER BY (linking_method <> 'none') DESC, run_date DESC LIMIT 1",
        )
        .await?
        .collect()
        .await?;
    let Some(b) = latest.first().filter(|b| b.num_rows() > 0) else {
        bail!("no calibration of the 'all' bank in the lake yet: run `irtlake calibrate` first");
    };
    let run_date = lake::stream::opt_day(lake::stream::days(b, 0)?, 0)
        .map(lake::runs::day_str)
        .context("fit_meta: the latest calibration of bank 'all' has no run_date")?;
    let run_id = b.column(1).as_string::<i32>().value(0).to_string();
    let method = b.column(2).as_string::<i32>().value(0).to_string();
    if method == "none" {
        println!(
            "note: the latest calibration ({run_id}) is unlinked: the anchors chosen now define the scale"
        );
    }
    let rows = ctx
        .sql(
            "SELECT p.item_id, p.a, p.b, p.c, p.se_a, p.se_b, p.n_responses, coalesce(q.topic_id, ''), q.is_anchor \
             FROM item_params p LEFT JOIN questions q ON q.question_id = p.item_id \
             WHERE p.run_date = $1 AND p.bank = 'all' AND p.excluded_reason IS NULL ORDER BY p.item_id",
        )
        .await?
        .with_param_values(vec![datafusion::scalar::ScalarValue::Utf8(Some(run_date.clone()))])?
        .collect()
        .await
        .context("reading the calibration's item parameters")?;
    let mut ids = Vec::new();
    let mut candidates = Vec::new();
    let mut existing = 0usize;
    for b in &rows {
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
        let (id, a, bb, c, sa, sb) = (b.column(0).as_string::<i32>(), f(1), f(2), f(3), f(4), f(5));
        let n = b.column(6).as_primitive::<Int64Type>();
        let topic = b.column(7).as_string::<i32>();
        let anc = b.column(8).as_boolean();
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
