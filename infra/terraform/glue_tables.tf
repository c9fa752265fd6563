# GENERATED from lake/src/catalog.rs by lake::glue (lake/src/glue.rs): do not edit.
# Regenerate after changing the catalog, and commit the result:
#   IRTLAKE_BLESS=1 cargo test -p lake --lib glue
# (`cargo test -p lake` fails while this file and the catalog differ.)
#
# One Glue table per lake table: Parquet under <LAKE_URI>/<table>/, Hive partition
# folders read through partition projection, so Athena needs no crawler and no
# MSCK REPAIR TABLE. dt and run_date: every day from var.athena_projection_start_date
# to NOW; week_start: every Monday; bank: injected, so a query names its banks
# (bank = 'all'). The database and the Athena workgroup are in athena.tf.

resource "aws_glue_catalog_table" "attempts" {
  name          = "attempts"
  database_name = aws_glue_catalog_database.lake.name
  description   = "raw attempts (one row per answer), partitioned by UTC day of completed_at"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "parquet"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = "${var.athena_projection_start_date},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "dt"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/attempts/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "attempt_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "question_id"
      type = "string"
    }

    columns {
      name = "subject_id"
      type = "string"
    }

    columns {
      name = "topic_id"
      type = "string"
    }

    columns {
      name = "session_id"
      type = "string"
    }

    columns {
      name = "correct"
      type = "boolean"
    }

    columns {
      name = "completed_at"
      type = "timestamp"
    }

    columns {
      name = "time_spent_ms"
      type = "bigint"
    }

    columns {
      name = "hints_used"
      type = "bigint"
    }

    columns {
      name = "shard_bucket"
      type = "bigint"
    }
  }
}

resource "aws_glue_catalog_table" "questions" {
  name          = "questions"
  database_name = aws_glue_catalog_database.lake.name
  description   = "question bank; anchors carry known irt_a/irt_b/irt_c"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"       = "TRUE"
    "classification" = "parquet"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/questions/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "question_id"
      type = "string"
    }

    columns {
      name = "subject_id"
      type = "string"
    }

    columns {
      name = "topic_id"
      type = "string"
    }

    columns {
      name = "tags"
      type = "array<string>"
    }

    columns {
      name = "irt_a"
      type = "double"
    }

    columns {
      name = "irt_b"
      type = "double"
    }

    columns {
      name = "irt_c"
      type = "double"
    }

    columns {
      name = "is_anchor"
      type = "boolean"
    }
  }
}

resource "aws_glue_catalog_table" "item_params" {
  name          = "item_params"
  database_name = aws_glue_catalog_database.lake.name
  description   = "calibrated item parameters (IRT metric, on the anchor scale when linked) with item fit"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "projection.bank.type"              = "injected"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  partition_keys {
    name = "bank"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/item_params/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "item_id"
      type = "string"
    }

    columns {
      name = "model"
      type = "string"
    }

    columns {
      name = "a"
      type = "double"
    }

    columns {
      name = "b"
      type = "double"
    }

    columns {
      name = "c"
      type = "double"
    }

    columns {
      name = "se_a"
      type = "double"
    }

    columns {
      name = "se_b"
      type = "double"
    }

    columns {
      name = "se_c"
      type = "double"
    }

    columns {
      name = "n_responses"
      type = "bigint"
    }

    columns {
      name = "p_correct"
      type = "double"
    }

    columns {
      name = "is_anchor"
      type = "boolean"
    }

    columns {
      name = "linked"
      type = "boolean"
    }

    columns {
      name = "excluded_reason"
      type = "string"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }

    columns {
      name = "s_x2"
      type = "double"
    }

    columns {
      name = "df_s_x2"
      type = "bigint"
    }

    columns {
      name = "p_s_x2"
      type = "double"
    }

    columns {
      name = "infit"
      type = "double"
    }

    columns {
      name = "outfit"
      type = "double"
    }

    columns {
      name = "z_infit"
      type = "double"
    }

    columns {
      name = "z_outfit"
      type = "double"
    }
  }
}

resource "aws_glue_catalog_table" "anchor_drift" {
  name          = "anchor_drift"
  database_name = aws_glue_catalog_database.lake.name
  description   = "anchor drift screen per linked calibration: known vs estimated parameters on the anchor scale, robust z, flagged; and the recent-vs-earlier time-split test"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "projection.bank.type"              = "injected"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  partition_keys {
    name = "bank"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/anchor_drift/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "item_id"
      type = "string"
    }

    columns {
      name = "linking_method"
      type = "string"
    }

    columns {
      name = "a_ref"
      type = "double"
    }

    columns {
      name = "b_ref"
      type = "double"
    }

    columns {
      name = "c_ref"
      type = "double"
    }

    columns {
      name = "a_compared"
      type = "double"
    }

    columns {
      name = "b_compared"
      type = "double"
    }

    columns {
      name = "a_est"
      type = "double"
    }

    columns {
      name = "b_est"
      type = "double"
    }

    columns {
      name = "diff_b"
      type = "double"
    }

    columns {
      name = "log_a_ratio"
      type = "double"
    }

    columns {
      name = "z_b"
      type = "double"
    }

    columns {
      name = "z_a"
      type = "double"
    }

    columns {
      name = "flagged"
      type = "boolean"
    }

    columns {
      name = "flagged_round"
      type = "bigint"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }

    columns {
      name = "n_earlier"
      type = "bigint"
    }

    columns {
      name = "n_recent"
      type = "bigint"
    }

    columns {
      name = "recent_shift_b"
      type = "double"
    }

    columns {
      name = "recent_se_b"
      type = "double"
    }

    columns {
      name = "recent_z"
      type = "double"
    }

    columns {
      name = "flagged_recent"
      type = "boolean"
    }
  }
}

resource "aws_glue_catalog_table" "abilities" {
  name          = "abilities"
  database_name = aws_glue_catalog_database.lake.name
  description   = "student abilities (θ, posterior SD) per calibration"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "projection.bank.type"              = "injected"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  partition_keys {
    name = "bank"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/abilities/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "theta"
      type = "double"
    }

    columns {
      name = "se"
      type = "double"
    }

    columns {
      name = "n_responses"
      type = "bigint"
    }

    columns {
      name = "method"
      type = "string"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "fit_meta" {
  name          = "fit_meta"
  database_name = aws_glue_catalog_database.lake.name
  description   = "one row per calibration: fit statistics, convergence, linking constants"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "projection.bank.type"              = "injected"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  partition_keys {
    name = "bank"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/fit_meta/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "bank_id"
      type = "string"
    }

    columns {
      name = "model"
      type = "string"
    }

    columns {
      name = "n_students"
      type = "bigint"
    }

    columns {
      name = "n_items"
      type = "bigint"
    }

    columns {
      name = "n_responses"
      type = "bigint"
    }

    columns {
      name = "n_anchors"
      type = "bigint"
    }

    columns {
      name = "loglik"
      type = "double"
    }

    columns {
      name = "aic"
      type = "double"
    }

    columns {
      name = "bic"
      type = "double"
    }

    columns {
      name = "iterations"
      type = "bigint"
    }

    columns {
      name = "converged"
      type = "boolean"
    }

    columns {
      name = "linking_method"
      type = "string"
    }

    columns {
      name = "linking_a"
      type = "double"
    }

    columns {
      name = "linking_b"
      type = "double"
    }

    columns {
      name = "n_anchors_used"
      type = "bigint"
    }

    columns {
      name = "n_students_fit"
      type = "bigint"
    }

    columns {
      name = "n_students_scored"
      type = "bigint"
    }

    columns {
      name = "n_responses_fit"
      type = "bigint"
    }

    columns {
      name = "n_responses_scored"
      type = "bigint"
    }

    columns {
      name = "sample"
      type = "string"
    }

    columns {
      name = "elapsed_ms"
      type = "bigint"
    }

    columns {
      name = "model_spec"
      type = "string"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "student_topic_theta" {
  name          = "student_topic_theta"
  database_name = aws_glue_catalog_database.lake.name
  description   = "topic-level θ (EAP with fixed bank parameters)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/student_topic_theta/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "topic_id"
      type = "string"
    }

    columns {
      name = "theta"
      type = "double"
    }

    columns {
      name = "se"
      type = "double"
    }

    columns {
      name = "n_responses"
      type = "bigint"
    }
  }
}

resource "aws_glue_catalog_table" "features_topic_daily" {
  name          = "features_topic_daily"
  database_name = aws_glue_catalog_database.lake.name
  description   = "daily features per student and topic with θ (topic, else global)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                    = "TRUE"
    "classification"              = "parquet"
    "projection.enabled"          = "true"
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = "${var.athena_projection_start_date},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "dt"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/features_topic_daily/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "topic_id"
      type = "string"
    }

    columns {
      name = "attempts"
      type = "bigint"
    }

    columns {
      name = "correct"
      type = "bigint"
    }

    columns {
      name = "accuracy"
      type = "double"
    }

    columns {
      name = "avg_time_ms"
      type = "double"
    }

    columns {
      name = "hints"
      type = "bigint"
    }

    columns {
      name = "theta_mean"
      type = "double"
    }

    columns {
      name = "theta_sd"
      type = "double"
    }

    columns {
      name = "theta_source"
      type = "string"
    }

    columns {
      name = "computed_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "weekly_kpi" {
  name          = "weekly_kpi"
  database_name = aws_glue_catalog_database.lake.name
  description   = "weekly KPIs per student (weeks start Monday, UTC)"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                            = "TRUE"
    "classification"                      = "parquet"
    "projection.enabled"                  = "true"
    "projection.week_start.type"          = "date"
    "projection.week_start.format"        = "yyyy-MM-dd"
    "projection.week_start.range"         = "${var.athena_projection_start_date},NOW"
    "projection.week_start.interval"      = "7"
    "projection.week_start.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "week_start"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/weekly_kpi/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "i_t"
      type = "double"
    }

    columns {
      name = "a_t"
      type = "double"
    }

    columns {
      name = "e_t"
      type = "double"
    }

    columns {
      name = "r_t"
      type = "double"
    }

    columns {
      name = "s"
      type = "double"
    }

    columns {
      name = "p"
      type = "double"
    }

    columns {
      name = "sigma"
      type = "double"
    }

    columns {
      name = "method"
      type = "string"
    }

    columns {
      name = "n_responses"
      type = "bigint"
    }

    columns {
      name = "updated_at"
      type = "timestamp"
    }

    columns {
      name = "p_model"
      type = "string"
    }
  }
}

resource "aws_glue_catalog_table" "growth_fit" {
  name          = "growth_fit"
  database_name = aws_glue_catalog_database.lake.name
  description   = "growth models (Bayesian NUTS, REML/ML mixed model): estimates and diagnostics"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/growth_fit/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "model"
      type = "string"
    }

    columns {
      name = "kind"
      type = "string"
    }

    columns {
      name = "term"
      type = "string"
    }

    columns {
      name = "group_id"
      type = "string"
    }

    columns {
      name = "estimate"
      type = "double"
    }

    columns {
      name = "se"
      type = "double"
    }

    columns {
      name = "rhat"
      type = "double"
    }

    columns {
      name = "ess"
      type = "double"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "churn_fit" {
  name          = "churn_fit"
  database_name = aws_glue_catalog_database.lake.name
  description   = "Cox model coefficients, baseline hazard, Kaplan–Meier curve, diagnostics"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/churn_fit/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "kind"
      type = "string"
    }

    columns {
      name = "term"
      type = "string"
    }

    columns {
      name = "time_days"
      type = "double"
    }

    columns {
      name = "estimate"
      type = "double"
    }

    columns {
      name = "se"
      type = "double"
    }

    columns {
      name = "z"
      type = "double"
    }

    columns {
      name = "p_value"
      type = "double"
    }

    columns {
      name = "n_risk"
      type = "bigint"
    }

    columns {
      name = "events"
      type = "bigint"
    }

    columns {
      name = "fitted_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "forecasts" {
  name          = "forecasts"
  database_name = aws_glue_catalog_database.lake.name
  description   = "28-day cohort forecasts with 80% intervals"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/forecasts/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "series"
      type = "string"
    }

    columns {
      name = "ds"
      type = "date"
    }

    columns {
      name = "yhat"
      type = "double"
    }

    columns {
      name = "yhat_lower"
      type = "double"
    }

    columns {
      name = "yhat_upper"
      type = "double"
    }

    columns {
      name = "generated_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "anomalies" {
  name          = "anomalies"
  database_name = aws_glue_catalog_database.lake.name
  description   = "in-sample points outside the 99% interval"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/anomalies/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "series"
      type = "string"
    }

    columns {
      name = "ds"
      type = "date"
    }

    columns {
      name = "value"
      type = "double"
    }

    columns {
      name = "expected"
      type = "double"
    }

    columns {
      name = "score"
      type = "double"
    }

    columns {
      name = "generated_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "user_segment" {
  name          = "user_segment"
  database_name = aws_glue_catalog_database.lake.name
  description   = "k-means segments with rule-based labels"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "${var.athena_projection_start_date},NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/user_segment/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "cluster"
      type = "int"
    }

    columns {
      name = "segment_label"
      type = "string"
    }

    columns {
      name = "features_snapshot"
      type = "string"
    }

    columns {
      name = "assigned_at"
      type = "timestamp"
    }
  }
}

resource "aws_glue_catalog_table" "report_artifacts" {
  name          = "report_artifacts"
  database_name = aws_glue_catalog_database.lake.name
  description   = "generated reports: object key, URL (presigned on S3), size, checksum"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    "EXTERNAL"                            = "TRUE"
    "classification"                      = "parquet"
    "projection.enabled"                  = "true"
    "projection.week_start.type"          = "date"
    "projection.week_start.format"        = "yyyy-MM-dd"
    "projection.week_start.range"         = "${var.athena_projection_start_date},NOW"
    "projection.week_start.interval"      = "7"
    "projection.week_start.interval.unit" = "DAYS"
  }

  partition_keys {
    name = "week_start"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.lake_uri}/report_artifacts/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "run_id"
      type = "string"
    }

    columns {
      name = "student_id"
      type = "string"
    }

    columns {
      name = "format"
      type = "string"
    }

    columns {
      name = "key"
      type = "string"
    }

    columns {
      name = "url"
      type = "string"
    }

    columns {
      name = "bytes"
      type = "bigint"
    }

    columns {
      name = "sha256"
      type = "string"
    }

    columns {
      name = "generated_at"
      type = "timestamp"
    }
  }
}
