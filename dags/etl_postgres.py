"""Seed 004's TODO "task reading/writing into a DB": an ETL through the `warehouse_db` connection.

extract lands the day's orders as a CSV file in the environment's storage (dags/common/storage.py:
the local data folder, or S3 in the cloud and with `nox -s up -- --s3`), load copies that file into
raw_orders (idempotently), transform aggregates into customer_totals (orders at or above the
variable `etl_min_order_amount`), then a check reads the result back.
"""

import csv
import io

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import dag, task

from common.defaults import DEFAULT_ARGS
from common.storage import storage_root

CONN_ID = "warehouse_db"

# One transaction; the advisory lock serialises runs that create the tables at the same time
# (concurrent CREATE TABLE IF NOT EXISTS can fail on pg_type's unique index).
DDL = """
SELECT pg_advisory_xact_lock(hashtext('etl_postgres_orders.create_tables'));
CREATE TABLE IF NOT EXISTS raw_orders (
    id integer PRIMARY KEY, customer text NOT NULL, amount numeric(10, 2) NOT NULL, ordered_on date NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_totals (
    customer text NOT NULL, ordered_on date NOT NULL, total numeric(12, 2) NOT NULL, orders integer NOT NULL,
    PRIMARY KEY (customer, ordered_on)
);
"""

SAMPLE_ORDERS = [
    (1, "acme", 120.50), (2, "acme", 15.00), (3, "globex", 99.99),
    (4, "initech", 5.25), (5, "globex", 250.00), (6, "acme", 42.00),
]


def business_day(dag_run) -> str:
    """The day a run is for: its logical date, or when it ran (Airflow 3 manual runs may have none)."""
    return (dag_run.logical_date or dag_run.run_after).date().isoformat()


@dag(
    dag_id="etl_postgres_orders",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["etl", "example"],
    default_args=DEFAULT_ARGS,
)
def etl_postgres_orders():
    create_tables = SQLExecuteQueryOperator(task_id="create_tables", conn_id=CONN_ID, sql=DDL)

    @task
    def extract(dag_run=None) -> str:
        """Land the day's orders as etl/orders/<day>.csv in storage; returns the file's path in storage."""
        day = business_day(dag_run)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "customer", "amount", "ordered_on"])
        writer.writerows((order_id, customer, amount, day) for order_id, customer, amount in SAMPLE_ORDERS)
        target = storage_root() / "etl" / "orders" / f"{day}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(buffer.getvalue())
        return f"etl/orders/{day}.csv"

    @task
    def load(landed: str) -> int:
        """Copy the landed file into raw_orders (idempotent: primary keys)."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        with (storage_root() / landed).open("r") as handle:
            rows = [(int(r["id"]), r["customer"], r["amount"], r["ordered_on"]) for r in csv.DictReader(handle)]
        PostgresHook(postgres_conn_id=CONN_ID).insert_rows(
            "raw_orders", rows, target_fields=["id", "customer", "amount", "ordered_on"],
            replace=True, replace_index="id")
        return len(rows)

    @task
    def transform(extracted: int, dag_run=None) -> int:
        """Aggregate the day's orders per customer into customer_totals."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook
        from airflow.sdk import Variable

        minimum = float(Variable.get("etl_min_order_amount"))
        hook = PostgresHook(postgres_conn_id=CONN_ID)
        hook.run(
            """
            INSERT INTO customer_totals (customer, ordered_on, total, orders)
            SELECT customer, ordered_on, sum(amount), count(*) FROM raw_orders
            WHERE ordered_on = %(ds)s AND amount >= %(minimum)s GROUP BY customer, ordered_on
            ON CONFLICT (customer, ordered_on) DO UPDATE SET total = EXCLUDED.total, orders = EXCLUDED.orders
            """,
            parameters={"ds": business_day(dag_run), "minimum": minimum},
        )
        return extracted

    @task
    def check(loaded: int, dag_run=None) -> None:
        """Read the result back: every customer with a qualifying order has a total."""
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        day = business_day(dag_run)
        hook = PostgresHook(postgres_conn_id=CONN_ID)
        (customers,) = hook.get_first("SELECT count(*) FROM customer_totals WHERE ordered_on = %s", parameters=(day,))
        if loaded and not customers:
            raise ValueError(f"customer_totals is empty for {day} after loading {loaded} orders")

    check(transform(load(create_tables >> extract())))


etl_postgres_orders()
