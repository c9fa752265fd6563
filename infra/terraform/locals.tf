locals {
  # The pipeline stages, in pipeline order. One Lambda function each, all from the
  # same zip (the binary serves the stage named by STAGE). The state machine
  # (../statemachine/pipeline.asl.json) must reference exactly these: `make
  # infra-check` compares the two, and a test compares them with cli/src/stages.rs.
  # plan writes nothing: it chooses the student shards of the stages after it.
  stages = [
    "export_attempts",
    "calibrate",
    "plan",
    "score_abilities",
    "score_topics",
    "features",
    "kpis",
    "churn",
    "growth",
    "forecast",
    "segments",
    "reports",
  ]

  # Lake tables each stage reads and writes (names of lake/src/catalog.rs, plus
  # `reports`, the folder of the report objects). This is the least-privilege
  # contract: a function may Get/List only its reads and writes, and Put/Delete only
  # its writes. A stage that needs another table adds it here (`make infra-check`
  # checks the names against the catalog). score_topics and kpis read fit_meta and
  # item_params through lake::runs::latest_calibration; score_abilities reads the run
  # date's calibrations and writes their abilities (calibrate writes abilities itself
  # only when an event asks for `scoring = inline`).
  stage_tables = {
    export_attempts = {
      reads  = []
      writes = ["attempts", "questions"]
    }
    calibrate = {
      reads  = ["attempts", "questions"]
      writes = ["item_params", "abilities", "fit_meta", "anchor_drift"]
    }
    plan = {
      reads  = ["attempts"]
      writes = []
    }
    score_abilities = {
      reads  = ["attempts", "item_params", "fit_meta"]
      writes = ["abilities"]
    }
    score_topics = {
      reads  = ["attempts", "item_params", "fit_meta"]
      writes = ["student_topic_theta"]
    }
    features = {
      reads  = ["attempts", "abilities", "student_topic_theta"]
      writes = ["features_topic_daily"]
    }
    kpis = {
      reads  = ["attempts", "item_params", "fit_meta"]
      writes = ["weekly_kpi"]
    }
    churn = {
      reads  = ["attempts", "item_params", "fit_meta", "features_topic_daily", "abilities", "weekly_kpi"]
      writes = ["weekly_kpi", "churn_fit"]
    }
    growth = {
      reads  = ["attempts", "item_params", "fit_meta", "abilities", "features_topic_daily", "weekly_kpi"]
      writes = ["weekly_kpi", "growth_fit"]
    }
    forecast = {
      reads  = ["attempts", "questions", "features_topic_daily", "weekly_kpi"]
      writes = ["forecasts", "anomalies"]
    }
    segments = {
      reads  = ["attempts", "features_topic_daily", "weekly_kpi"]
      writes = ["user_segment"]
    }
    reports = {
      reads  = ["attempts", "questions", "item_params", "fit_meta", "anchor_drift", "abilities", "student_topic_theta", "features_topic_daily", "weekly_kpi", "churn_fit", "growth_fit", "forecasts", "anomalies", "user_segment"]
      writes = ["reports", "report_artifacts"]
    }
  }

  # Function names: <prefix>-<stage with dashes>.
  function_names = { for s in local.stages : s => "${var.name_prefix}-${replace(s, "_", "-")}" }

  # Per stage: the settings of var.stage_config (a missing stage fails here).
  stage_settings = { for s in local.stages : s => var.stage_config[s] }

  # DataFusion's memory pool per function (IRTLAKE_QUERY_MEMORY_MB): 60 % of the
  # function's memory, the rest for the stage's own data, Arrow buffers outside the
  # pool and the runtime. Queries that need more spill to /tmp (ephemeral_mb).
  query_memory_mb = { for s in local.stages : s => floor(local.stage_settings[s].memory_mb * 0.6) }

  lake_bucket_name = "${var.name_prefix}-lake-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
  log_bucket_name  = "${var.name_prefix}-logs-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
  lake_uri         = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}"

  # Athena (athena.tf, glue_tables.tf): the Glue database (name_prefix with `_` for `-`,
  # unless glue_database_name is set) and where query results go: beside the lake root,
  # not under it, so no function can read them and no table lists them.
  glue_database_name      = coalesce(var.glue_database_name, replace(var.name_prefix, "-", "_"))
  athena_results_prefix   = "athena-results/"
  athena_results_location = "s3://${aws_s3_bucket.lake.bucket}/${local.athena_results_prefix}"

  # Object key prefixes ("lake/attempts/") a stage may read (its reads and its own
  # writes: a stage re-reads what it wrote, e.g. weekly_kpi) and write.
  read_prefixes = {
    for s in local.stages : s => [
      for t in distinct(concat(local.stage_tables[s].reads, local.stage_tables[s].writes)) : "${var.lake_prefix}/${t}/"
    ]
  }
  write_prefixes = {
    for s in local.stages : s => [for t in local.stage_tables[s].writes : "${var.lake_prefix}/${t}/"]
  }

  # Where `terraform apply` uploads the Lambda zip (outside the lake root: no function
  # can read it).
  deploy_key = "deploy/irtlake/bootstrap.zip"

  # The scheduled run's input: the bank list, and the student shard count or target
  # shard size only when set (absent, the state machine's PlanShards decides).
  schedule_input = merge(
    { run_date = "<aws.scheduler.scheduled-time>", banks = var.scheduled_banks },
    var.shard_count == null ? {} : { shards = var.shard_count },
    var.students_per_shard == null ? {} : { students_per_shard = var.students_per_shard },
  )

  # Environment of every function; the stage-specific additions are in functions.tf.
  common_environment = {
    LAKE_URI = local.lake_uri
    RUST_LOG = var.log_level
  }
}
