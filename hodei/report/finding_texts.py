"""Finding texts, in English and Spanish, keyed by finding code: title, one-sentence
root cause (filled with measured values), probable causes, modules to look at and
recommended actions by priority. Looked up through hodei.report.catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FindingText:
    title: str
    root_cause: str  # one sentence, formatted with the finding's params
    causes: list[str]
    modules: list[str]
    # (priority, action): priority is "high" | "medium" | "low"
    actions: list[tuple[str, str]] = field(default_factory=list)


def _f(
    title: str, root: str, causes: list[str], modules: list[str], actions: list[tuple[str, str]]
) -> FindingText:
    return FindingText(title, root, causes, modules, actions)


H, M, L = "high", "medium", "low"
DISPATCHER = "hodei/server/dispatcher.py"
OUTBOX = "hodei/server/outbox.py"
WORKERS = "hodei/server/workers.py"
JOBS = "hodei/server/transitions.py"
STREAM = "hodei/server/api/workers_api.py"
AGENT = "hodei/worker/agent.py"

FINDINGS: dict[str, dict[str, FindingText]] = {
    "DISPATCHER_STALLED": {
        "en": _f(
            "The dispatcher is not processing the queue",
            "{pending} job(s) PENDING for {pending_age}, {ready} READY worker(s), "
            "no dispatcher cycle for {cycle_age}: the dispatcher is stopped",
            [
                "The dispatcher loop was never started, or died and was not restarted",
                "The claim query fails silently (check the server log for dispatcher errors)",
                "LISTEN/NOTIFY lost and the polling backstop is not running",
                "Workers are READY in the table but have no open stream on a live server",
            ],
            [DISPATCHER, "hodei/server/app.py"],
            [
                (H, "Check the server log for dispatcher cycles and errors"),
                (
                    H,
                    "Restart the server and verify server_status.dispatcher_last_cycle_at advances",
                ),
                (M, "Alert when the oldest PENDING job is older than the threshold"),
            ],
        ),
        "es": _f(
            "El dispatcher no procesa la cola",
            "{pending} job(s) en PENDING desde hace {pending_age}, {ready} worker(s) READY, "
            "ningún ciclo del dispatcher desde hace {cycle_age}: el dispatcher está detenido",
            [
                "El bucle del dispatcher nunca se inició, o murió y no se reinició",
                "La consulta de reclamación falla en silencio"
                " (buscar errores en el log del servidor)",
                "Se perdió un LISTEN/NOTIFY y el sondeo de respaldo no se ejecuta",
                "Los workers figuran READY en la tabla pero no tienen stream abierto",
            ],
            [DISPATCHER, "hodei/server/app.py"],
            [
                (H, "Buscar en el log del servidor los ciclos y errores del dispatcher"),
                (
                    H,
                    "Reiniciar el servidor y verificar que avanza "
                    "server_status.dispatcher_last_cycle_at",
                ),
                (M, "Alertar cuando el job PENDING más antiguo supere el umbral"),
            ],
        ),
    },
    "DISPATCHER_NOT_CLAIMING": {
        "en": _f(
            "The dispatcher runs but does not assign the queued jobs",
            "{pending} job(s) PENDING for {pending_age} with {ready} READY worker(s) although "
            "the dispatcher cycled {cycle_age} ago: it skips them (queue rows locked by "
            "another transaction, or no worker assignable from a dispatching server)",
            [
                "A long transaction holds the job_queue rows; the claim (FOR UPDATE SKIP LOCKED) "
                "skips them silently",
                "The READY workers' streams are on a server whose dispatcher is off or gone",
                "The claim query filters the jobs out",
            ],
            [DISPATCHER, "hodei/db/queries.sql"],
            [
                (
                    H,
                    "Find long transactions: SELECT pid, xact_start, query FROM pg_stat_activity "
                    "WHERE xact_start < now() - interval '1 minute'",
                ),
                (H, "Compare workers.server_id with the dispatching servers in server_status"),
                (M, "Log the number of queue rows a cycle skipped"),
            ],
        ),
        "es": _f(
            "El dispatcher se ejecuta pero no asigna los jobs en cola",
            "{pending} job(s) en PENDING desde hace {pending_age} con {ready} worker(s) READY "
            "aunque el dispatcher hizo un ciclo hace {cycle_age}: los salta (filas de la cola "
            "bloqueadas por otra transacción, o ningún worker asignable desde un servidor que "
            "despacha)",
            [
                "Una transacción larga retiene las filas de job_queue; la reclamación "
                "(FOR UPDATE SKIP LOCKED) las salta en silencio",
                "Los streams de los workers READY están en un servidor sin dispatcher",
                "La consulta de reclamación filtra los jobs",
            ],
            [DISPATCHER, "hodei/db/queries.sql"],
            [
                (
                    H,
                    "Buscar transacciones largas: SELECT pid, xact_start, query FROM "
                    "pg_stat_activity WHERE xact_start < now() - interval '1 minute'",
                ),
                (H, "Comparar workers.server_id con los servidores que despachan en server_status"),
                (M, "Registrar en el log cuántas filas de la cola salta un ciclo"),
            ],
        ),
    },
    "DISPATCHER_DISABLED": {
        "en": _f(
            "No server runs a dispatcher",
            "{servers} live server(s) with dispatcher_enabled = false and {pending} job(s) "
            "PENDING (oldest {pending_age}): the dispatcher is switched off",
            [
                "HODEI_DISPATCHER_ENABLED=false in the server's environment",
                "A configuration meant for a test or a read-only replica reached production",
            ],
            ["hodei/settings.py", DISPATCHER],
            [
                (H, "Start the server with HODEI_DISPATCHER_ENABLED=true (the default)"),
                (M, "Fail start-up loudly when no server in the deployment dispatches"),
            ],
        ),
        "es": _f(
            "Ningún servidor ejecuta el dispatcher",
            "{servers} servidor(es) activo(s) con dispatcher_enabled = false y {pending} job(s) "
            "en PENDING (el más antiguo: {pending_age}): el dispatcher está desactivado",
            [
                "HODEI_DISPATCHER_ENABLED=false en el entorno del servidor",
                "Una configuración de prueba o de réplica de solo lectura llegó a producción",
            ],
            ["hodei/settings.py", DISPATCHER],
            [
                (H, "Arrancar el servidor con HODEI_DISPATCHER_ENABLED=true (valor por defecto)"),
                (M, "Avisar al arrancar si ningún servidor del despliegue despacha"),
            ],
        ),
    },
    "NO_READY_WORKERS": {
        "en": _f(
            "No worker is ready to run jobs",
            "no READY worker with a fresh heartbeat and an open stream: jobs cannot be assigned",
            [
                "No worker process is running",
                "Workers cannot reach the server (address, TLS)",
                "Every worker is LOST, DRAINING or busy",
            ],
            [WORKERS, AGENT],
            [
                (H, "Start a worker: hodei worker --server {server}"),
                (M, "Check the worker log for registration errors"),
            ],
        ),
        "es": _f(
            "Ningún worker está listo para ejecutar jobs",
            "ningún worker READY con heartbeat reciente y stream abierto: "
            "no se pueden asignar jobs",
            [
                "No hay ningún proceso worker",
                "Los workers no alcanzan el servidor",
                "Todos los workers están LOST, DRAINING u ocupados",
            ],
            [WORKERS, AGENT],
            [
                (H, "Arrancar un worker: hodei worker --server {server}"),
                (M, "Revisar errores de registro en el log del worker"),
            ],
        ),
    },
    "WORKER_HEARTBEAT_STALE": {
        "en": _f(
            "Workers stopped sending heartbeats",
            "{count} worker(s) silent for {age} ({ids}): the worker process is frozen, dead "
            "or cut off",
            [
                "The worker process is stopped (SIGSTOP), hung or killed",
                "The network between worker and server drops packets",
                "The server's reaper does not mark silent workers LOST",
            ],
            [AGENT, WORKERS],
            [
                (H, "Check the worker process (ps, its log) and restart it"),
                (M, "Verify the reaper marks silent workers LOST and requeues their jobs"),
            ],
        ),
        "es": _f(
            "Workers sin heartbeat",
            "{count} worker(s) sin señal desde hace {age} ({ids}): el proceso worker está "
            "congelado, muerto o aislado",
            [
                "El proceso worker está detenido (SIGSTOP), colgado o muerto",
                "La red entre worker y servidor pierde paquetes",
                "El reaper del servidor no marca LOST a los workers silenciosos",
            ],
            [AGENT, WORKERS],
            [
                (H, "Revisar el proceso worker (ps, su log) y reiniciarlo"),
                (M, "Verificar que el reaper marca LOST y reencola sus jobs"),
            ],
        ),
    },
    "WORKER_BUSY_WITHOUT_JOB": {
        "en": _f(
            "BUSY workers hold no job",
            "{count} worker(s) BUSY with no ASSIGNED/RUNNING job: their slot is leaked",
            [
                "A job result was recorded without releasing the worker",
                "A cancelled or requeued job did not free its worker",
            ],
            [WORKERS, JOBS],
            [
                (H, "Inspect the worker rows and the last events of their jobs"),
                (M, "Release the worker in the same transaction that finishes the job"),
            ],
        ),
        "es": _f(
            "Workers BUSY sin job",
            "{count} worker(s) BUSY sin ningún job ASSIGNED/RUNNING: su slot se ha perdido",
            [
                "Se registró el resultado de un job sin liberar el worker",
                "Un job cancelado o reencolado no liberó su worker",
            ],
            [WORKERS, JOBS],
            [
                (H, "Revisar las filas de workers y los últimos eventos de sus jobs"),
                (M, "Liberar el worker en la misma transacción que termina el job"),
            ],
        ),
    },
    "JOB_ACK_OVERDUE": {
        "en": _f(
            "Assigned jobs were never acknowledged",
            "{count} job(s) ASSIGNED past their acknowledgement deadline: the run command "
            "did not reach the worker and nothing requeued it",
            ["The worker stream broke after assignment", "The ack-deadline reaper is not running"],
            [DISPATCHER, STREAM],
            [
                (H, "Check the worker stream errors in both logs"),
                (M, "Verify unacknowledged assignments return to the queue"),
            ],
        ),
        "es": _f(
            "Jobs asignados sin confirmación",
            "{count} job(s) ASSIGNED pasado su plazo de confirmación: la orden no llegó al "
            "worker y nadie la reencoló",
            [
                "El stream del worker se rompió tras la asignación",
                "El reaper de plazos de confirmación no se ejecuta",
            ],
            [DISPATCHER, STREAM],
            [
                (H, "Revisar los errores del stream del worker en ambos logs"),
                (M, "Verificar que las asignaciones sin confirmar vuelven a la cola"),
            ],
        ),
    },
    "JOB_RUNNING_STUCK": {
        "en": _f(
            "Jobs stuck in RUNNING",
            "{count} job(s) RUNNING past their timeout or on a worker that is gone",
            [
                "The worker died and its jobs were not recovered",
                "The timeout is not enforced on the worker",
            ],
            [WORKERS, AGENT],
            [
                (H, "Check the workers of those jobs; requeue or cancel them"),
                (M, "Verify LOST workers' jobs return to PENDING"),
            ],
        ),
        "es": _f(
            "Jobs atascados en RUNNING",
            "{count} job(s) RUNNING pasado su timeout o en un worker desaparecido",
            ["El worker murió y sus jobs no se recuperaron", "El worker no aplica el timeout"],
            [WORKERS, AGENT],
            [
                (H, "Revisar los workers de esos jobs; reencolarlos o cancelarlos"),
                (M, "Verificar que los jobs de workers LOST vuelven a PENDING"),
            ],
        ),
    },
    "PENDING_NOT_QUEUED": {
        "en": _f(
            "PENDING jobs missing from the queue",
            "{count} PENDING job(s) have no job_queue row ({ids}): no dispatcher will ever "
            "see them",
            [
                "A job row was written without its queue row (not in one transaction)",
                "The queue row was deleted by hand or by a faulty cleanup",
            ],
            [JOBS, "hodei/db/queries.sql"],
            [
                (H, "Re-enqueue them: INSERT INTO job_queue (job_id) SELECT ..."),
                (M, "Write the job and its queue row in one transaction"),
            ],
        ),
        "es": _f(
            "Jobs PENDING fuera de la cola",
            "{count} job(s) PENDING sin fila en job_queue ({ids}): ningún dispatcher los verá",
            [
                "Se escribió el job sin su fila de cola (no en una transacción)",
                "La fila de cola se borró a mano o por una limpieza defectuosa",
            ],
            [JOBS, "hodei/db/queries.sql"],
            [
                (H, "Reencolarlos: INSERT INTO job_queue (job_id) SELECT ..."),
                (M, "Escribir el job y su fila de cola en una transacción"),
            ],
        ),
    },
    "QUEUE_ROW_FOR_FINISHED_JOB": {
        "en": _f(
            "Queue rows for jobs that are not PENDING",
            "{count} job_queue row(s) point at jobs that are no longer PENDING",
            ["A claim changed the job's state without deleting its queue row"],
            [DISPATCHER, "hodei/db/queries.sql"],
            [(M, "Delete those rows and make the claim delete the queue row it takes")],
        ),
        "es": _f(
            "Filas de cola de jobs que no están PENDING",
            "{count} fila(s) de job_queue apuntan a jobs que ya no están PENDING",
            ["Una reclamación cambió el estado del job sin borrar su fila de cola"],
            [DISPATCHER, "hodei/db/queries.sql"],
            [(M, "Borrar esas filas y hacer que la reclamación borre la fila que toma")],
        ),
    },
    "EVENTS_MISSING": {
        "en": _f(
            "Job activity without domain events",
            "{jobs_touched} job(s) changed in the last {window} but only {events} domain "
            "event(s) were written",
            ["A state change bypasses the transition service that writes events"],
            [JOBS, "hodei/server/events.py"],
            [(H, "Find the code path that updates jobs without an event")],
        ),
        "es": _f(
            "Actividad de jobs sin domain events",
            "{jobs_touched} job(s) cambiaron en los últimos {window} pero solo se escribieron "
            "{events} domain event(s)",
            ["Un cambio de estado evita el servicio de transiciones que escribe eventos"],
            [JOBS, "hodei/server/events.py"],
            [(H, "Encontrar el camino que actualiza jobs sin evento")],
        ),
    },
    "OUTBOX_EMPTY": {
        "en": _f(
            "Domain events flow but the outbox stays empty",
            "{events} domain event(s) in the last {window} and {outbox} outbox row(s): "
            "the transactional outbox is bypassed",
            [
                "State changes write domain_events without their outbox_events row",
                "The outbox insert is in a different transaction that fails",
            ],
            ["hodei/server/events.py", OUTBOX],
            [
                (H, "Write the outbox row in the same transaction as the domain event"),
                (M, "Add a test that every event has its outbox row"),
            ],
        ),
        "es": _f(
            "Hay domain events pero la outbox sigue vacía",
            "{events} domain event(s) en los últimos {window} y {outbox} fila(s) en la "
            "outbox: la outbox transaccional se omite",
            [
                "Los cambios de estado escriben domain_events sin su fila en outbox_events",
                "La inserción en la outbox va en otra transacción que falla",
            ],
            ["hodei/server/events.py", OUTBOX],
            [
                (H, "Escribir la fila de outbox en la misma transacción que el evento"),
                (M, "Añadir un test: cada evento tiene su fila de outbox"),
            ],
        ),
    },
    "OUTBOX_BACKLOG": {
        "en": _f(
            "Outbox events are not being published",
            "{count} unpublished outbox row(s), the oldest {age} old: the outbox relay "
            "is stopped or stuck",
            [
                "The relay is disabled (HODEI_OUTBOX_RELAY_ENABLED=false) or its loop died",
                "The rows are locked by a stuck transaction",
                "Publishing fails (see outbox_events.last_error)",
            ],
            [OUTBOX],
            [
                (H, "Check server_status.outbox_last_publish_at and outbox_events.last_error"),
                (H, "Look for long-running transactions in pg_stat_activity"),
                (M, "Alert on the age of the oldest unpublished row"),
            ],
        ),
        "es": _f(
            "Los eventos de la outbox no se publican",
            "{count} fila(s) de outbox sin publicar, la más antigua de hace {age}: el relay "
            "de la outbox está detenido o bloqueado",
            [
                "El relay está desactivado (HODEI_OUTBOX_RELAY_ENABLED=false) o su bucle murió",
                "Una transacción colgada bloquea las filas",
                "La publicación falla (ver outbox_events.last_error)",
            ],
            [OUTBOX],
            [
                (H, "Revisar server_status.outbox_last_publish_at y outbox_events.last_error"),
                (H, "Buscar transacciones largas en pg_stat_activity"),
                (M, "Alertar sobre la antigüedad de la fila sin publicar más antigua"),
            ],
        ),
    },
    "LOGS_NOT_STREAMED": {
        "en": _f(
            "Job logs do not reach the CLI",
            "the job ran but {received} of {expected} log line(s) reached the subscriber",
            [
                "The worker does not send log batches",
                "SubscribeLogs misses live lines",
                "Log batches are rejected by the server (fencing, size)",
            ],
            ["hodei/server/logs.py", AGENT],
            [
                (H, "Compare job_logs rows with what `hodei job logs` prints"),
                (M, "Check the worker log for log batch errors"),
            ],
        ),
        "es": _f(
            "Los logs de los jobs no llegan al CLI",
            "el job se ejecutó pero solo {received} de {expected} línea(s) de log llegaron "
            "al suscriptor",
            [
                "El worker no envía lotes de log",
                "SubscribeLogs pierde líneas en vivo",
                "El servidor rechaza los lotes de log (fencing, tamaño)",
            ],
            ["hodei/server/logs.py", AGENT],
            [
                (H, "Comparar las filas de job_logs con lo que imprime `hodei job logs`"),
                (M, "Revisar errores de lotes de log en el log del worker"),
            ],
        ),
    },
    "GRPC_STREAM_ERRORS": {
        "en": _f(
            "gRPC stream errors in the logs",
            '{count} gRPC stream error(s) in {sources} (e.g. "{sample}"): the worker stream '
            "is being torn down",
            [
                "HTTP/2 keepalive not configured or mismatched between server and worker",
                "A proxy or load balancer closes idle streams",
                "The server closes the stream on a protocol error",
            ],
            [STREAM, "hodei/worker/connection.py", "hodei/settings.py"],
            [
                (
                    H,
                    "Align keepalive settings (HODEI_KEEPALIVE_TIME_MS, "
                    "HODEI_SERVER_MIN_PING_INTERVAL_MS)",
                ),
                (M, "Check the interval between the errors: a fixed period points at a timeout"),
            ],
        ),
        "es": _f(
            "Errores de stream gRPC en los logs",
            '{count} error(es) de stream gRPC en {sources} (p. ej. "{sample}"): el stream '
            "del worker se está cortando",
            [
                "Keepalive HTTP/2 sin configurar o distinto entre servidor y worker",
                "Un proxy o balanceador cierra streams inactivos",
                "El servidor cierra el stream por un error de protocolo",
            ],
            [STREAM, "hodei/worker/connection.py", "hodei/settings.py"],
            [
                (
                    H,
                    "Alinear el keepalive (HODEI_KEEPALIVE_TIME_MS, "
                    "HODEI_SERVER_MIN_PING_INTERVAL_MS)",
                ),
                (M, "Mirar el intervalo entre errores: un periodo fijo indica un timeout"),
            ],
        ),
    },
    "DATABASE_UNREACHABLE": {
        "en": _f(
            "The database cannot be reached",
            "the database at {database} does not answer ({error})",
            ["PostgreSQL is down", "Wrong URL, credentials or network"],
            ["hodei/db/connector.py", "hodei/settings.py"],
            [(H, "Check PostgreSQL is running and HODEI_DATABASE_URL is right")],
        ),
        "es": _f(
            "No se puede alcanzar la base de datos",
            "la base de datos {database} no responde ({error})",
            ["PostgreSQL está caído", "URL, credenciales o red incorrectas"],
            ["hodei/db/connector.py", "hodei/settings.py"],
            [(H, "Comprobar que PostgreSQL corre y que HODEI_DATABASE_URL es correcta")],
        ),
    },
    "SCHEMA_MISMATCH": {
        "en": _f(
            "The database schema is not the expected version",
            "schema version {observed}, expected {expected}: migrations were not applied",
            ["`hodei db migrate` was not run", "The server is older or newer than the database"],
            ["hodei/db/migrate.py"],
            [(H, "Run: hodei db migrate --database-url <url>")],
        ),
        "es": _f(
            "El esquema de la base de datos no tiene la versión esperada",
            "esquema en versión {observed}, se esperaba {expected}: faltan migraciones",
            ["No se ejecutó `hodei db migrate`", "El servidor es más antiguo o nuevo que la BD"],
            ["hodei/db/migrate.py"],
            [(H, "Ejecutar: hodei db migrate --database-url <url>")],
        ),
    },
    "SERVER_UNREACHABLE": {
        "en": _f(
            "The gRPC server cannot be reached",
            "the server at {server} does not answer ({error})",
            ["The server process is stopped or crashed", "Wrong address or port"],
            ["hodei/server/app.py"],
            [
                (H, "Start the server: hodei server --port <port>"),
                (M, "Check the server log for the reason it stopped"),
            ],
        ),
        "es": _f(
            "No se puede alcanzar el servidor gRPC",
            "el servidor en {server} no responde ({error})",
            ["El proceso servidor está detenido o cayó", "Dirección o puerto incorrectos"],
            ["hodei/server/app.py"],
            [
                (H, "Arrancar el servidor: hodei server --port <puerto>"),
                (M, "Revisar en el log del servidor por qué se detuvo"),
            ],
        ),
    },
    "SERVER_NOT_SERVING": {
        "en": _f(
            "The server is not SERVING",
            "grpc.health.v1 answers {status}: the server is starting or shutting down",
            ["Start-up has not finished (migrations, database)", "The server is draining"],
            ["hodei/server/app.py"],
            [(H, "Check the server log for start-up errors")],
        ),
        "es": _f(
            "El servidor no está SERVING",
            "grpc.health.v1 responde {status}: el servidor arranca o se está apagando",
            ["El arranque no terminó (migraciones, base de datos)", "El servidor se apaga"],
            ["hodei/server/app.py"],
            [(H, "Revisar errores de arranque en el log del servidor")],
        ),
    },
    "JOBS_NOT_COMPLETING": {
        "en": _f(
            "Jobs do not complete",
            "the job {job} stopped at {state} after {elapsed}",
            ["The worker never started or finished it", "The result was rejected"],
            [JOBS, AGENT],
            [(H, "Follow the job's domain events and the worker log")],
        ),
        "es": _f(
            "Los jobs no terminan",
            "el job {job} se quedó en {state} tras {elapsed}",
            ["El worker nunca lo inició o terminó", "Se rechazó el resultado"],
            [JOBS, AGENT],
            [(H, "Seguir los domain events del job y el log del worker")],
        ),
    },
    "LOW_THROUGHPUT": {
        "en": _f(
            "Throughput is below the threshold",
            "{rate} job(s)/min finished while {pending} wait: the platform is too slow",
            ["Too few workers or slots", "Slow claims (missing index, lock contention)"],
            [DISPATCHER],
            [(M, "Add workers or slots; check dispatcher cycle durations")],
        ),
        "es": _f(
            "Throughput por debajo del umbral",
            "{rate} job(s)/min terminados mientras {pending} esperan: la plataforma va lenta",
            ["Pocos workers o slots", "Reclamaciones lentas (índices, bloqueos)"],
            [DISPATCHER],
            [(M, "Añadir workers o slots; revisar la duración de los ciclos")],
        ),
    },
    "SCENARIO_FAILED": {
        "en": _f(
            "A scenario failed",
            'scenario "{scenario}" failed at "{step}": {error}',
            ["See the step's error and the evidence below"],
            ["features/"],
            [(H, "Re-run the scenario and read the step's error and the server log")],
        ),
        "es": _f(
            "Un escenario falló",
            'el escenario "{scenario}" falló en "{step}": {error}',
            ["Ver el error del paso y la evidencia"],
            ["features/"],
            [(H, "Repetir el escenario y leer el error del paso y el log del servidor")],
        ),
    },
}
