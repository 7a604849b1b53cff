#!/usr/bin/env bash
# Apache Kafka on this machine, without Docker: the broker and Kafka's own
# command-line tools from Maven Central, and KRaft clusters of combined
# broker+controller nodes on loopback.
#
#   scripts/kafka.sh install              fetch Kafka's jars with Maven (once)
#   scripts/kafka.sh start DIR [NODES] [--sasl [--tls]]
#                                         format and start NODES nodes (default 1);
#                                         the last line printed is the bootstrap servers.
#                                         --sasl: clients authenticate (SASL_PLAINTEXT,
#                                         SCRAM-SHA-512) and the StandardAuthorizer
#                                         checks ACLs (no ACL: denied); the super user
#                                         `admin`'s client config is DIR/admin.properties
#                                         --tls (with --sasl): the client and inter-broker
#                                         listener is SASL_SSL; a CA (DIR/ca.pem) and the
#                                         brokers' certificate (IP:127.0.0.1, localhost)
#                                         are made with openssl under DIR/tls; clients
#                                         verify the brokers with DIR/ca.pem
#                                         (librdkafka: ssl.ca.location)
#   scripts/kafka.sh stop DIR             stop every node (SIGTERM, then SIGKILL)
#   scripts/kafka.sh kill DIR N           SIGKILL node N
#   scripts/kafka.sh restart DIR N        start node N again (stopping it first if it runs)
#   scripts/kafka.sh pause DIR N          SIGSTOP node N (resume: SIGCONT)
#   scripts/kafka.sh resume DIR N
#   scripts/kafka.sh bootstrap DIR        print the cluster's bootstrap servers
#   scripts/kafka.sh tool NAME ARGS...    run one of Kafka's tools: kafka-topics,
#                                         kafka-consumer-groups, kafka-console-consumer,
#                                         kafka-console-producer, kafka-configs,
#                                         kafka-transactions, kafka-metadata-quorum,
#                                         kafka-broker-api-versions, kafka-get-offsets,
#                                         kafka-storage, kafka-acls
#                                         (on a --sasl cluster, give the tool
#                                         --command-config DIR/admin.properties, or the
#                                         console tools --producer.config/--consumer.config)
#
# Everything a cluster writes (configuration, data, logs, pids) stays under DIR.
# Environment:
#   SPROCKET_KAFKA_CACHE   where the jars go (default ~/.cache/sprocket)
#   KAFKA_HEAP_OPTS        a node's heap (default -Xms128m -Xmx768m)
#   KAFKA_BROKER_PROPERTIES  extra server.properties lines for every node
#   SPROCKET_KAFKA_PARENT  a pid: the cluster is stopped when that process ends
#                          (tests set it so nothing outlives them)
#   KAFKA_ADMIN_PASSWORD   with --sasl: the super user `admin`'s password (default:
#                          random); Sprocket's own principals and their ACLs come
#                          from scripts/kafka-acls.sh
set -euo pipefail

KAFKA_VERSION=4.4.0
SCALA_VERSION=2.13
LOG4J_VERSION=2.25.5
CACHE="${SPROCKET_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sprocket}"
HOME_DIR="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$HOME_DIR/libs"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "kafka.sh: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------

java_major() {
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  v=${v#1.}
  echo "${v%%[.+-]*}"
}

check_java() {
  command -v java >/dev/null || die "Java is missing: install a JDK ≥ 17 (Debian: apt-get install openjdk-17-jdk-headless)"
  local major
  major=$(java_major)
  [ -n "$major" ] && [ "$major" -ge 17 ] 2>/dev/null ||
    die "Java $major found; Kafka $KAFKA_VERSION needs Java ≥ 17"
}

installed() { [ -f "$HOME_DIR/.complete" ]; }

need_install() {
  check_java
  installed || die "Kafka $KAFKA_VERSION is not installed: run scripts/kafka.sh install"
}

# --- install -------------------------------------------------------------------

cmd_install() {
  check_java
  if installed; then
    echo "kafka.sh: Kafka $KAFKA_VERSION already installed in $HOME_DIR"
    return 0
  fi
  command -v mvn >/dev/null || die "Maven is missing: install it (Debian: apt-get install maven)"
  local work
  work=$(mktemp -d)
  # A throwaway project whose only purpose is its dependency tree: the broker
  # (kafka_2.13), the tools (kafka-tools) and a log4j2 binding for slf4j.
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sprocket.local</groupId>
  <artifactId>kafka-distribution</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  echo "kafka.sh: fetching Kafka $KAFKA_VERSION (broker and tools) from Maven Central"
  if ! mvn -B -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/maven.log" 2>&1; then
    tail -n 30 "$work/maven.log" >&2
    die "Maven could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable?)"
  fi
  [ -f "$work/libs/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ] &&
    [ -f "$work/libs/kafka-tools-$KAFKA_VERSION.jar" ] ||
    die "Maven finished but Kafka's jars are missing from $work/libs"
  mkdir -p "$HOME_DIR"
  rm -rf "$LIBS"
  mv "$work/libs" "$LIBS"
  rm -rf "$work"
  write_log_configs
  touch "$HOME_DIR/.complete"
  echo "kafka.sh: Kafka $KAFKA_VERSION installed in $HOME_DIR ($(ls "$LIBS" | wc -l) jars)"
}

write_log_configs() {
  # Brokers log to a file under their node folder; tools log warnings to stderr.
  cat >"$HOME_DIR/log4j2-broker.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
  cat >"$HOME_DIR/log4j2-tools.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
EOF
}

classpath() { echo "$LIBS/*"; }

# --- tools -------------------------------------------------------------------

tool_class() {
  case "${1%.sh}" in
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-configs) echo org.apache.kafka.tools.ConfigCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
    *) return 1 ;;
  esac
}

cmd_tool() {
  [ $# -ge 1 ] || die "usage: kafka.sh tool NAME ARGS..."
  need_install
  local class
  class=$(tool_class "$1") || die "unknown tool $1 (see the list at the top of scripts/kafka.sh)"
  shift
  # Short-lived JVMs: a small heap and the quick compiler start fastest.
  exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$HOME_DIR/log4j2-tools.properties" \
    -cp "$(classpath)" "$class" "$@"
}

# --- clusters ------------------------------------------------------------------

# N free loopback ports, held open together so they differ.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# The ids of the brokers the cluster's metadata lists (unfenced brokers), asked
# of whichever bootstrap server answers: a Metadata request (v4, no topics).
# With KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD set (a --sasl cluster) the
# connection first authenticates with SCRAM-SHA-512 (RFC 5802, as Kafka's
# SaslHandshake v1 and SaslAuthenticate v0 carry it); with KAFKA_SSL_CA set (a
# --tls cluster) it speaks TLS first, verifying the broker against that CA.
metadata_brokers() {
  python3 - "$1" <<'EOF'
import base64, hashlib, hmac, os, secrets, socket, ssl, struct, sys
def read(sock, n):
    b = b""
    while len(b) < n:
        c = sock.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
def call(sock, api, version, correlation, body):
    """One request (header v1); its response after the correlation id."""
    client = b"kafka.sh"
    req = struct.pack(">hhih", api, version, correlation, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(req)) + req)
    size = struct.unpack(">i", read(sock, 4))[0]
    return read(sock, size)[4:]
def authenticate(sock, user, password):
    body = call(sock, 17, 1, 1, struct.pack(">h", 13) + b"SCRAM-SHA-512")
    if struct.unpack_from(">h", body, 0)[0]:
        raise OSError("SCRAM-SHA-512 is not enabled")
    def step(correlation, message):
        body = call(sock, 36, 0, correlation, struct.pack(">i", len(message)) + message)
        (error,) = struct.unpack_from(">h", body, 0)
        (length,) = struct.unpack_from(">h", body, 2)
        pos = 4 + max(length, 0)
        (size,) = struct.unpack_from(">i", body, pos)
        if error:
            raise OSError("authentication failed (%d)" % error)
        return body[pos + 4:pos + 4 + size].decode()
    name = user.replace("=", "=3D").replace(",", "=2C")
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    first = "n=%s,r=%s" % (name, nonce)
    server_first = step(2, ("n,," + first).encode())
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise OSError("the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    final = "c=biws,r=" + attrs["r"]
    message = ",".join([first, server_first, final]).encode()
    signature = hmac.new(hashlib.sha512(client_key).digest(), message, "sha512").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    step(3, (final + ",p=" + proof).encode())
user, password = os.environ.get("KAFKA_SASL_USERNAME"), os.environ.get("KAFKA_SASL_PASSWORD", "")
ca = os.environ.get("KAFKA_SSL_CA")
tls = ssl.create_default_context(cafile=ca) if ca else None
for server in sys.argv[1].split(","):
    host, port = server.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        s.settimeout(3)
        if tls:
            s = tls.wrap_socket(s, server_hostname=host)
        if user:
            authenticate(s, user, password)
        # api_key 3 (Metadata), version 4; topics: [], allow_auto_topic_creation: false
        body = call(s, 3, 4, 7, struct.pack(">ib", 0, 0))
        s.close()
        pos = 4  # throttle_time_ms
        (n,) = struct.unpack_from(">i", body, pos); pos += 4
        ids = []
        for _ in range(n):
            (node,) = struct.unpack_from(">i", body, pos); pos += 4
            (hl,) = struct.unpack_from(">h", body, pos); pos += 2 + hl + 4
            (rl,) = struct.unpack_from(">h", body, pos); pos += 2 + max(rl, 0)
            ids.append(node)
        print(" ".join(str(i) for i in sorted(ids)))
        sys.exit(0)
    except (OSError, EOFError, struct.error, KeyError, ValueError):
        continue
sys.exit(1)
EOF
}

# metadata_brokers of a cluster's node, as the super user on a --sasl cluster,
# over TLS on a --tls one.
probe_brokers() {
  local dir=$1 addr=$2 ca=""
  [ ! -f "$dir/ca.pem" ] || ca="$dir/ca.pem"
  if [ -f "$dir/admin.properties" ]; then
    KAFKA_SSL_CA=$ca KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD=$(admin_password "$dir") \
      metadata_brokers "$addr"
  elif [ -n "$ca" ]; then
    KAFKA_SSL_CA=$ca metadata_brokers "$addr"
  else
    metadata_brokers "$addr"
  fi
}

admin_password() { sed -n 's/.*password="\([^"]*\)".*/\1/p' "$1/admin.properties" | head -n 1; }

node_dir() { echo "$1/node-$2"; }
node_pid() {
  local f
  f="$(node_dir "$1" "$2")/pid"
  [ -f "$f" ] && cat "$f"
}
node_running() {
  local pid
  pid=$(node_pid "$1" "$2") || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
nodes_of() { cat "$1/nodes" 2>/dev/null || die "$1 holds no cluster started by kafka.sh"; }
bootstrap_of() { cat "$1/bootstrap"; }

launch_node() {
  local dir=$1 n=$2 nd
  nd=$(node_dir "$dir" "$n")
  mkdir -p "$nd/logs"
  # shellcheck disable=SC2086
  setsid java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dkafka.logs.dir="$nd/logs" \
    -Dlog4j2.configurationFile="$HOME_DIR/log4j2-broker.properties" \
    -cp "$(classpath)" kafka.Kafka "$nd/server.properties" \
    >"$nd/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$nd/pid"
}

node_addr() { cut -d, -f"$2" <"$1/bootstrap"; }

# Waits until each of `which` (node numbers) answers a metadata request itself
# and lists every node of the cluster among its brokers (so it is up, caught up
# with the controllers and unfenced).
wait_brokers() {
  local dir=$1 which=$2 deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120})) nodes ids n all
  nodes=$(nodes_of "$dir")
  all=$(seq -s ' ' 1 "$nodes")
  for n in $which; do
    while :; do
      ids=$(probe_brokers "$dir" "$(node_addr "$dir" "$n")" 2>/dev/null || true)
      case " $ids " in *" $n "*) [ "$(wc -w <<<"$ids")" -ge "$(live_nodes "$dir" | wc -w)" ] && break ;; esac
      if ! node_running "$dir" "$n"; then
        tail -n 30 "$(node_dir "$dir" "$n")/logs/stdout.log" "$(node_dir "$dir" "$n")/logs/server.log" >&2 2>/dev/null || true
        die "node $n exited while starting (logs above, and in $(node_dir "$dir" "$n")/logs)"
      fi
      [ $SECONDS -lt "$deadline" ] || die "node $n of the cluster in $dir did not come up in time; it lists brokers [$ids] of [$all]"
      sleep 0.3
    done
  done
}

# The nodes whose process runs.
live_nodes() {
  local n
  for n in $(seq 1 "$(nodes_of "$1")"); do
    node_running "$1" "$n" && echo "$n"
  done
}

# Stops the cluster when the process SPROCKET_KAFKA_PARENT names is gone.
watch_parent() {
  local dir=$1 parent=$2
  (
    trap '' HUP
    # Until the parent ends, or the cluster is stopped (no pid files left).
    while kill -0 "$parent" 2>/dev/null && ls "$dir"/node-*/pid >/dev/null 2>&1; do sleep 1; done
    ls "$dir"/node-*/pid >/dev/null 2>&1 && "$HERE/kafka.sh" stop "$dir" >/dev/null 2>&1
  ) </dev/null >/dev/null 2>&1 &
  disown || true
}

cmd_start() {
  local args=() sasl="" tls=""
  for a in "$@"; do
    case "$a" in
      --sasl) sasl=1 ;;
      --tls) tls=1 ;;
      -*) die "unknown option $a (usage: kafka.sh start DIR [NODES] [--sasl [--tls]])" ;;
      *) args+=("$a") ;;
    esac
  done
  [ ${#args[@]} -ge 1 ] && [ ${#args[@]} -le 2 ] || die "usage: kafka.sh start DIR [NODES] [--sasl [--tls]]"
  [ -z "$tls" ] || [ -n "$sasl" ] || die "--tls needs --sasl (the TLS listener is SASL_SSL)"
  local dir=${args[0]} nodes=${args[1]:-1}
  [[ "$nodes" =~ ^[1-9][0-9]*$ ]] || die "NODES must be a positive number, not $nodes"
  [ -f "$HOME_DIR/.complete" ] || cmd_install >&2
  need_install
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/nodes" ]; then
    for n in $(seq 1 "$(nodes_of "$dir")"); do
      node_running "$dir" "$n" && die "a cluster already runs in $dir (node $n); stop it first"
    done
    die "$dir holds a stopped cluster; restart its nodes with 'kafka.sh restart $dir N' or use a new DIR"
  fi
  local ports brokers=() controllers=() voters="" bootstrap="" rf isr cluster
  read -r -a ports <<<"$(free_ports $((2 * nodes)))"
  for n in $(seq 1 "$nodes"); do
    brokers+=("${ports[$((2 * n - 2))]}")
    controllers+=("${ports[$((2 * n - 1))]}")
    voters+="${voters:+,}$n@127.0.0.1:${controllers[$((n - 1))]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${brokers[$((n - 1))]}"
  done
  rf=$((nodes < 3 ? nodes : 3))
  isr=$((rf < 2 ? 1 : 2))
  # A cluster id that starts with '-' reads as an option to kafka-storage
  # (1 start in 64 failed so), which is why Kafka's own ids never do.
  cluster=$(python3 -c '
import base64, uuid
while True:
    id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not id.startswith("-"):
        print(id)
        break')
  local password="" format_args=()
  if [ -n "$sasl" ]; then
    password=${KAFKA_ADMIN_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
    [[ "$password" =~ ^[A-Za-z0-9._~+/-]+$ ]] ||
      die "KAFKA_ADMIN_PASSWORD may hold only letters, digits and ._~+/-"
    # The super user's SCRAM credential is in the cluster's first metadata,
    # so the brokers can authenticate to each other from their first start.
    format_args=(--add-scram "SCRAM-SHA-512=[name=admin,password=$password]")
    [ -z "$tls" ] || make_certificates "$dir"
    admin_client_properties "$password" "${tls:+$dir/ca.pem}" >"$dir/admin.properties"
    chmod 600 "$dir/admin.properties"
  fi
  for n in $(seq 1 "$nodes"); do
    local nd
    nd=$(node_dir "$dir" "$n")
    mkdir -p "$nd/data" "$nd/logs"
    cat >"$nd/server.properties" <<EOF
# Node $n of a $nodes-node KRaft cluster made by scripts/kafka.sh (combined broker and controller).
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
$(listener_properties "${brokers[$((n - 1))]}" "${controllers[$((n - 1))]}" "$password" "${tls:+$dir}")
log.dirs=$nd/data
num.partitions=1
default.replication.factor=$rf
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# Tests start consumers and expect them to get partitions at once.
group.initial.rebalance.delay.ms=0
# Transactions left open by a killed producer are aborted soon after they time out.
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
EOF
    if [ -n "${KAFKA_BROKER_PROPERTIES:-}" ]; then
      printf '%s\n' "$KAFKA_BROKER_PROPERTIES" >>"$nd/server.properties"
    fi
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dlog4j2.configurationFile="$HOME_DIR/log4j2-tools.properties" \
      -cp "$(classpath)" kafka.tools.StorageTool format \
      -t "$cluster" -c "$nd/server.properties" "${format_args[@]}" >"$nd/logs/format.log" 2>&1 ||
      { cat "$nd/logs/format.log" >&2; die "formatting node $n's storage failed"; }
  done
  echo "$nodes" >"$dir/nodes"
  echo "$bootstrap" >"$dir/bootstrap"
  echo "$cluster" >"$dir/cluster-id"
  for n in $(seq 1 "$nodes"); do
    launch_node "$dir" "$n"
  done
  if [ -n "${SPROCKET_KAFKA_PARENT:-}" ]; then
    watch_parent "$dir" "$SPROCKET_KAFKA_PARENT"
  fi
  wait_brokers "$dir" "$(seq -s ' ' 1 "$nodes")"
  echo "kafka.sh: $nodes-node KRaft cluster $cluster up in $dir (Kafka $KAFKA_VERSION)"
  if [ -n "$tls" ]; then
    echo "kafka.sh: SASL_SSL (SCRAM-SHA-512) with ACLs; CA: $dir/ca.pem; super user admin: $dir/admin.properties"
  elif [ -n "$sasl" ]; then
    echo "kafka.sh: SASL_PLAINTEXT (SCRAM-SHA-512) with ACLs; super user admin: $dir/admin.properties"
  fi
  echo "$bootstrap"
}

# A node's listeners: PLAINTEXT for clients and brokers, PLAINTEXT between
# controllers, unless a password is given (--sasl): then clients and brokers
# authenticate with SCRAM-SHA-512 (the admin's credential made at format
# time), the controllers with PLAIN (a controller listener cannot use SCRAM,
# whose credentials live in the metadata the controllers serve), and the
# StandardAuthorizer denies whatever no ACL allows; `admin` is the super user
# the brokers and controllers themselves run as. Given a cluster folder with
# certificates (--tls), the client and inter-broker listener is SASL_SSL: the
# brokers present DIR/tls/broker.pem (a PEM keystore: key and certificate
# chain) and verify each other against DIR/ca.pem; the controller listener
# stays SASL_PLAINTEXT.
listener_properties() {
  local broker=$1 controller=$2 password=$3 tls=${4:-} protocol=PLAINTEXT control=PLAINTEXT
  [ -z "$password" ] || { protocol=SASL_PLAINTEXT; control=SASL_PLAINTEXT; }
  [ -z "$tls" ] || protocol=SASL_SSL
  cat <<EOF
listeners=$protocol://127.0.0.1:$broker,CONTROLLER://127.0.0.1:$controller
advertised.listeners=$protocol://127.0.0.1:$broker
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocol:$protocol,CONTROLLER:$control
inter.broker.listener.name=$protocol
EOF
  if [ -n "$tls" ]; then
    cat <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$tls/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.endpoint.identification.algorithm=https
EOF
  fi
  [ -n "$password" ] || return 0
  cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.${protocol,,}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$password";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$password" user_admin="$password";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
EOF
}

# Kafka's tools as the super user of a --sasl cluster (--command-config);
# given the CA's file (--tls), over SASL_SSL, trusting that CA.
admin_client_properties() {
  if [ -n "${2:-}" ]; then
    cat <<EOF
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$2
EOF
  else
    echo "security.protocol=SASL_PLAINTEXT"
  fi
  cat <<EOF
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$1";
EOF
}

# A CA (DIR/ca.pem, its key in DIR/tls) and the brokers' certificate signed by
# it for 127.0.0.1 and localhost: DIR/tls/broker.pem holds its unencrypted
# PKCS#8 key and the chain (certificate, then the CA), as Kafka's PEM keystore
# reads it.
make_certificates() {
  local dir=$1 tls=$1/tls
  command -v openssl >/dev/null || die "openssl is missing (--tls makes certificates with it)"
  mkdir -p "$tls"
  chmod 700 "$tls"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 \
      -subj "/CN=kafka.sh test CA" -keyout "$tls/ca.key" -out "$dir/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
        -keyout "$tls/broker.key" -out "$tls/broker.csr" &&
      printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$tls/broker.ext" &&
      openssl x509 -req -in "$tls/broker.csr" -CA "$dir/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$tls/broker.ext" -out "$tls/broker.crt"
  } >"$tls/openssl.log" 2>&1 || { cat "$tls/openssl.log" >&2; die "making the TLS certificates failed"; }
  cat "$tls/broker.key" "$tls/broker.crt" "$dir/ca.pem" >"$tls/broker.pem"
  chmod 600 "$tls"/*.key "$tls/broker.pem"
}

stop_node() {
  local dir=$1 n=$2 pid
  pid=$(node_pid "$dir" "$n") || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  fi
}

wait_gone() {
  local pid=$1 deadline=$((SECONDS + ${2:-30}))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
}

cmd_stop() {
  [ $# -eq 1 ] || die "usage: kafka.sh stop DIR"
  local dir=$1 nodes pids=()
  [ -f "$dir/nodes" ] || { echo "kafka.sh: no cluster in $dir"; return 0; }
  nodes=$(nodes_of "$dir")
  for n in $(seq 1 "$nodes"); do
    if node_running "$dir" "$n"; then
      pids+=("$(node_pid "$dir" "$n")")
      stop_node "$dir" "$n"
    fi
  done
  for pid in "${pids[@]}"; do wait_gone "$pid" 30; done
  for n in $(seq 1 "$nodes"); do rm -f "$(node_dir "$dir" "$n")/pid"; done
  echo "kafka.sh: cluster in $dir stopped"
}

node_arg() {
  local dir=$1 n=$2
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -le "$(nodes_of "$dir")" ] ||
    die "no node $n in the cluster in $dir (it has $(nodes_of "$dir"))"
}

cmd_signal() {
  local sig=$1 dir=$2 n=$3 pid
  node_arg "$dir" "$n"
  node_running "$dir" "$n" || die "node $n in $dir is not running"
  pid=$(node_pid "$dir" "$n")
  kill "-$sig" "$pid"
  if [ "$sig" = KILL ]; then
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  echo "kafka.sh: SIG$sig sent to node $n (pid $pid)"
}

cmd_restart() {
  [ $# -eq 2 ] || die "usage: kafka.sh restart DIR N"
  local dir=$1 n=$2
  need_install
  node_arg "$dir" "$n"
  if node_running "$dir" "$n"; then
    local pid
    pid=$(node_pid "$dir" "$n")
    stop_node "$dir" "$n"
    wait_gone "$pid" 30
  fi
  launch_node "$dir" "$n"
  wait_brokers "$dir" "$n"
  echo "kafka.sh: node $n is back"
  bootstrap_of "$dir"
}

usage() { sed -n '2,45p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local verb=${1:-}
  [ $# -gt 0 ] && shift
  case "$verb" in
    install) cmd_install ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) [ $# -eq 2 ] || die "usage: kafka.sh kill DIR N"; cmd_signal KILL "$@" ;;
    pause) [ $# -eq 2 ] || die "usage: kafka.sh pause DIR N"; cmd_signal STOP "$@" ;;
    resume) [ $# -eq 2 ] || die "usage: kafka.sh resume DIR N"; cmd_signal CONT "$@" ;;
    restart) cmd_restart "$@" ;;
    bootstrap) [ $# -eq 1 ] || die "usage: kafka.sh bootstrap DIR"; bootstrap_of "$1" ;;
    tool) cmd_tool "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
