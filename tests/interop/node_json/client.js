// An independent cTrader Open API client in Node.js that speaks the JSON encoding over WebSocket
// (Spotware's port 5036 variant): one JSON text message per request, answer or event, shaped
// {"clientMsgId": "...", "payloadType": N, "payload": {...}} with the schema's camelCase names.
// It shares no code with ctrader-typed: the only package is `ws`, pinned by package-lock.json.
//
// Run by tests/interop/run_interop.py with the simulator's JSON line in $CTRADER_SIM_INFO:
//   node client.js --modules DIR   (DIR: the node_modules that `npm ci` filled)
// Flow: application auth -> accounts of the token -> account auth -> symbols -> spot
// subscription and a spot event -> market order (accepted, then filled) -> reconcile shows the
// position. Along the way it sends heartbeats, one request with enum names and an int64 as a
// string (the simulator reads both forms), and checks that 64-bit values come back as numbers.
// Prints one line per step; exits 0 only when every step held.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const PT = {
  HEARTBEAT: 51,
  APPLICATION_AUTH_REQ: 2100,
  APPLICATION_AUTH_RES: 2101,
  ACCOUNT_AUTH_REQ: 2102,
  ACCOUNT_AUTH_RES: 2103,
  NEW_ORDER_REQ: 2106,
  SYMBOLS_LIST_REQ: 2114,
  SYMBOLS_LIST_RES: 2115,
  RECONCILE_REQ: 2124,
  RECONCILE_RES: 2125,
  EXECUTION_EVENT: 2126,
  SUBSCRIBE_SPOTS_REQ: 2127,
  SUBSCRIBE_SPOTS_RES: 2128,
  SPOT_EVENT: 2131,
  ORDER_ERROR_EVENT: 2132,
  ERROR_RES: 2142,
  ACCOUNTS_BY_TOKEN_REQ: 2149,
  ACCOUNTS_BY_TOKEN_RES: 2150,
};
const ORDER_ACCEPTED = 2;
const ORDER_FILLED = 3;
const STEP_TIMEOUT_MS = 10000;

function argument(name) {
  const at = process.argv.indexOf(name);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[at + 1];
}

function fail(message) {
  console.log(`FAIL ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

class Connection {
  constructor(ws) {
    this.ws = ws;
    this.queue = []; // messages not yet taken by a waiter
    this.waiters = [];
    this.counter = 0;
    this.closed = null;
    ws.on("message", (data, isBinary) => {
      check(!isBinary, "the JSON endpoint sent a binary message");
      let message;
      try {
        message = JSON.parse(data.toString("utf8"));
      } catch (error) {
        fail(`not JSON from the server: ${error.message}`);
      }
      if (message.payloadType === PT.HEARTBEAT) return;
      const index = this.waiters.findIndex((w) => w.match(message));
      if (index >= 0) {
        const [waiter] = this.waiters.splice(index, 1);
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      } else {
        this.queue.push(message);
      }
    });
    ws.on("close", (code, reason) => {
      this.closed = `closed (${code} ${reason})`;
      for (const waiter of this.waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`the connection ${this.closed} while waiting for ${waiter.what}`));
      }
    });
    this.heartbeats = setInterval(() => this.send(PT.HEARTBEAT), 5000);
  }

  send(payloadType, payload, clientMsgId) {
    const message = { payloadType };
    if (clientMsgId !== undefined) message.clientMsgId = clientMsgId;
    if (payload !== undefined) message.payload = payload;
    this.ws.send(JSON.stringify(message));
  }

  waitFor(what, match) {
    const index = this.queue.findIndex(match);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]);
    if (this.closed) return Promise.reject(new Error(`the connection ${this.closed}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no ${what} within ${STEP_TIMEOUT_MS} ms`));
      }, STEP_TIMEOUT_MS);
      this.waiters.push({ what, match, resolve, reject, timer });
    });
  }

  async request(payloadType, payload, expected) {
    const clientMsgId = `node-json-${++this.counter}`;
    this.send(payloadType, payload, clientMsgId);
    const answer = await this.waitFor(`the answer to ${payloadType}`, (m) => m.clientMsgId === clientMsgId);
    if (answer.payloadType !== expected) {
      fail(`${payloadType} answered with ${answer.payloadType}: ${JSON.stringify(answer.payload)}`);
    }
    return answer.payload || {};
  }

  close() {
    clearInterval(this.heartbeats);
    this.ws.close(1000);
  }
}

async function main() {
  const info = JSON.parse(process.env.CTRADER_SIM_INFO || fail("CTRADER_SIM_INFO is not set"));
  const WebSocket = require(path.join(argument("--modules"), "ws"));
  const url = info.json_websocket_url || `wss://${info.host}:${info.json_port}`;
  const ws = new WebSocket(url, { ca: fs.readFileSync(info.ca_file), rejectUnauthorized: true });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  console.log(`connected to ${url} (TLS verified against the simulator's CA)`);
  const connection = new Connection(ws);

  await connection.request(
    PT.APPLICATION_AUTH_REQ,
    { clientId: info.client_id, clientSecret: info.client_secret },
    PT.APPLICATION_AUTH_RES,
  );
  console.log("ok application auth");

  const listed = await connection.request(
    PT.ACCOUNTS_BY_TOKEN_REQ,
    { accessToken: info.access_token },
    PT.ACCOUNTS_BY_TOKEN_RES,
  );
  const accounts = listed.ctidTraderAccount || [];
  check(accounts.length === info.accounts.length, `${accounts.length} accounts listed, ${info.accounts.length} granted`);
  for (const account of accounts) {
    check(typeof account.ctidTraderAccountId === "number", "ctidTraderAccountId (int64) is not a JSON number");
  }
  const demo = accounts.find((a) => !a.isLive);
  check(demo !== undefined, "no demo account listed");
  const accountId = demo.ctidTraderAccountId;
  console.log(`ok accounts: ${accounts.map((a) => a.ctidTraderAccountId).join(", ")}`);

  // The int64 as a string: the simulator reads both forms.
  await connection.request(
    PT.ACCOUNT_AUTH_REQ,
    { ctidTraderAccountId: String(accountId), accessToken: info.access_token },
    PT.ACCOUNT_AUTH_RES,
  );
  console.log(`ok account auth ${accountId}`);

  const symbols = await connection.request(
    PT.SYMBOLS_LIST_REQ,
    { ctidTraderAccountId: accountId },
    PT.SYMBOLS_LIST_RES,
  );
  const eurusd = (symbols.symbol || []).find((s) => s.symbolName === "EURUSD");
  check(eurusd !== undefined, "EURUSD is not in the symbol list");
  console.log(`ok symbols: ${(symbols.symbol || []).length}, EURUSD is ${eurusd.symbolId}`);

  await connection.request(
    PT.SUBSCRIBE_SPOTS_REQ,
    { ctidTraderAccountId: accountId, symbolId: [eurusd.symbolId] },
    PT.SUBSCRIBE_SPOTS_RES,
  );
  const spot = await connection.waitFor(
    "a EURUSD spot event",
    (m) => m.payloadType === PT.SPOT_EVENT && m.payload.symbolId === eurusd.symbolId && m.payload.bid !== undefined,
  );
  check(typeof spot.payload.bid === "number", "bid (uint64) is not a JSON number");
  console.log(`ok spots: EURUSD bid ${spot.payload.bid / 100000}`);

  // Enum names for the order type and side: the simulator reads names and numbers.
  const accepted = await connection.request(
    PT.NEW_ORDER_REQ,
    { ctidTraderAccountId: accountId, symbolId: eurusd.symbolId, orderType: "MARKET", tradeSide: "BUY", volume: 100000 },
    PT.EXECUTION_EVENT,
  );
  check(accepted.executionType === ORDER_ACCEPTED, `first execution is ${accepted.executionType}, not ORDER_ACCEPTED`);
  const orderId = accepted.order.orderId;
  const filled = await connection.waitFor(
    "the fill",
    (m) =>
      m.payloadType === PT.EXECUTION_EVENT &&
      m.payload.executionType === ORDER_FILLED &&
      m.payload.order &&
      m.payload.order.orderId === orderId,
  );
  const positionId = filled.payload.position.positionId;
  console.log(`ok market order ${orderId} filled at ${filled.payload.order.executionPrice}, position ${positionId}`);

  const reconciled = await connection.request(
    PT.RECONCILE_REQ,
    { ctidTraderAccountId: accountId },
    PT.RECONCILE_RES,
  );
  check(
    (reconciled.position || []).some((p) => p.positionId === positionId),
    "the new position is not in the reconcile answer",
  );
  console.log("ok reconcile shows the position");

  connection.close();
  console.log("PASS node-json: every step held");
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
