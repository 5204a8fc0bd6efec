#!/usr/bin/env node
// An independent cTrader Open API client for Node, run against `ctrader-typed sim`.
//
// It shares no code with ctrader-typed: it loads Spotware's published .proto schema with
// protobufjs, speaks raw TLS with 4-byte big-endian length framing, and decodes every frame
// strictly - protobufjs' decode throws on a missing `required` field, as it does in the many
// Node clients that ship an older schema. The schema it loads is the upstream release-91 text with
// the labels of release 88 and earlier put back (see `release88-labels.json`): fields the server
// must still fill because old clients require them.
//
// Usage: node client.js --modules DIR --proto-dir DIR
//   --modules DIR    the node_modules directory `npm ci` filled (kept outside the repository)
//   --proto-dir DIR  directory holding the four upstream OpenApi*.proto files
//   $CTRADER_SIM_INFO  the simulator's JSON line (host, port, ca_file, client_id, ...)
// Output: one "ok: ..." line per step; exit 0 when every step passed, 1 on any protocol
// deviation (a decode error, an unexpected answer, a missing event, a timeout).

'use strict';

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');

function option(name) {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : null;
}

const MODULES = option('--modules');
const PROTO_SOURCE = option('--proto-dir');
// protobufjs comes from the cache directory that run_interop.py installed it into.
const protobuf = require(MODULES ? path.join(path.resolve(MODULES), 'protobufjs') : 'protobufjs');
const PROTOBUFJS_VERSION = require(MODULES ? path.join(path.resolve(MODULES), 'protobufjs', 'package.json') : 'protobufjs/package.json').version;

const FLOW_TIMEOUT_MS = 150_000;
const ANSWER_TIMEOUT_MS = 30_000;
const HEARTBEAT_EVERY_MS = 5_000;
const MAX_FRAME = 15_000_000;
const SPOTS_WANTED = 10;
const EURUSD = 'EURUSD';
const PROTO_FILES = [
  'OpenApiCommonModelMessages.proto',
  'OpenApiCommonMessages.proto',
  'OpenApiModelMessages.proto',
  'OpenApiMessages.proto',
];

class Deviation extends Error {}

function fail(message) {
  throw new Deviation(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

/** Whether a decoded message carries `field` on the wire (protobufjs keeps defaults on the prototype). */
function has(message, field) {
  return Object.prototype.hasOwnProperty.call(message, field);
}

/** A JavaScript number from an int64 that protobufjs may have decoded as a Long. */
function num(value) {
  if (value === undefined || value === null) return value;
  return typeof value === 'number' ? value : Number(value.toString());
}

// -- the schema ------------------------------------------------------------------------------

/**
 * Copy the schema into a fresh temporary directory, turning each listed `optional` field back
 * into `required` (as releases up to 88 declared it). Returns the directory.
 */
function schemaWithOldLabels(sourceDir, labels) {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrader-interop-proto-'));
  const pending = new Set();
  for (const [message, fields] of Object.entries(labels)) {
    for (const field of fields) pending.add(`${message}.${field}`);
  }
  for (const name of PROTO_FILES) {
    const text = fs.readFileSync(path.join(sourceDir, name), 'utf8');
    const out = [];
    let current = null;
    for (const line of text.split('\n')) {
      const opened = /^\s*message\s+(\w+)\s*\{/.exec(line);
      if (opened) current = opened[1];
      else if (/^\}/.test(line)) current = null;
      const field = /^(\s*)optional(\s+\S+\s+)(\w+)(\s*=\s*\d+)\s*(?:\[deprecated\s*=\s*true\])?\s*;/.exec(line);
      if (current && field && pending.has(`${current}.${field[3]}`)) {
        out.push(`${field[1]}required${field[2]}${field[3]}${field[4]};`);
        pending.delete(`${current}.${field[3]}`);
      } else {
        out.push(line);
      }
    }
    fs.writeFileSync(path.join(outDir, name), out.join('\n'));
  }
  if (pending.size) fail(`schema has no optional field ${[...pending].join(', ')} to restore`);
  return outDir;
}

function loadSchema(protoDir) {
  const root = new protobuf.Root();
  root.loadSync(PROTO_FILES.map((name) => path.join(protoDir, name)), { keepCase: true });
  root.resolveAll();
  const byPayload = new Map();
  const payloadOf = new Map();
  for (const type of Object.values(root.nested)) {
    if (!(type instanceof protobuf.Type)) continue;
    const field = type.fields.payloadType;
    if (!field || field.options === undefined || field.options.default === undefined) continue;
    const value = field.typeDefault;
    if (typeof value !== 'number') continue;
    if (byPayload.has(value)) fail(`two messages claim payload type ${value}`);
    byPayload.set(value, type);
    payloadOf.set(type.name, value);
  }
  return { root, byPayload, payloadOf };
}

// -- the connection --------------------------------------------------------------------------

class Connection {
  constructor(schema, info) {
    this.schema = schema;
    this.info = info;
    this.envelope = schema.root.lookupType('ProtoMessage');
    this.inbox = [];
    this.waiters = [];
    this.nextId = 1;
    this.buffer = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.heartbeatsIn = 0;
    this.heartbeatsOut = 0;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const options = {
        host: this.info.host,
        port: this.info.port,
        ca: fs.readFileSync(this.info.ca_file),
        rejectUnauthorized: true,
      };
      if (!net.isIP(this.info.host)) options.servername = this.info.host;
      const socket = tls.connect(options, () => resolve());
      socket.once('error', (err) => {
        this.abort(new Deviation(`TLS: ${err.message}`));
        reject(err);
      });
      socket.on('data', (chunk) => this.onData(chunk));
      socket.on('close', () => {
        this.closed = true;
        this.abort(new Deviation('the server closed the connection'));
      });
      this.socket = socket;
    });
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    try {
      while (this.buffer.length >= 4) {
        const length = this.buffer.readUInt32BE(0);
        if (length > MAX_FRAME) fail(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
        if (this.buffer.length < 4 + length) break;
        const body = this.buffer.subarray(4, 4 + length);
        this.buffer = this.buffer.subarray(4 + length);
        this.receive(body);
      }
    } catch (err) {
      this.abort(err instanceof Deviation ? err : new Deviation(`decode: ${err.message}`));
      this.socket.destroy();
    }
  }

  receive(body) {
    const outer = this.envelope.decode(body);
    const type = this.schema.byPayload.get(outer.payloadType);
    if (!type) fail(`unknown payloadType ${outer.payloadType}`);
    let message;
    try {
      message = type.decode(outer.payload || new Uint8Array(0));
    } catch (err) {
      fail(`${type.name} does not decode with the schema: ${err.message}`);
    }
    const payloadField = message.payloadType;
    if (has(message, 'payloadType') && payloadField !== outer.payloadType) {
      fail(`${type.name}.payloadType ${payloadField} differs from the envelope's ${outer.payloadType}`);
    }
    if (type.name === 'ProtoHeartbeatEvent') this.heartbeatsIn += 1;
    const entry = { type: type.name, message, clientMsgId: outer.clientMsgId || null };
    this.inbox.push(entry);
    for (const waiter of [...this.waiters]) waiter.offer(entry);
  }

  abort(error) {
    if (this.error) return;
    this.error = error;
    for (const waiter of [...this.waiters]) waiter.reject(error);
  }

  send(typeName, fields, clientMsgId) {
    if (this.error) throw this.error;
    const type = this.schema.root.lookupType(typeName);
    const problem = type.verify(fields);
    if (problem) fail(`${typeName} would not be valid: ${problem}`);
    const payload = type.encode(type.fromObject(fields)).finish();
    const outer = { payloadType: this.schema.payloadOf.get(typeName), payload };
    if (clientMsgId) outer.clientMsgId = clientMsgId;
    const body = this.envelope.encode(outer).finish();
    const frame = Buffer.alloc(4 + body.length);
    frame.writeUInt32BE(body.length, 0);
    Buffer.from(body).copy(frame, 4);
    this.socket.write(frame);
  }

  /** The first message (already received at or after `since`, or still to come) that `match` accepts. */
  waitFor(match, what, since = 0, timeoutMs = ANSWER_TIMEOUT_MS) {
    for (let i = since; i < this.inbox.length; i += 1) {
      if (match(this.inbox[i])) return Promise.resolve(this.inbox[i]);
    }
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const waiter = {
        offer: (entry) => {
          if (!match(entry)) return;
          done();
          resolve(entry);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const timer = setTimeout(() => waiter.reject(new Deviation(`timed out waiting for ${what}`)), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      this.waiters.push(waiter);
    });
  }

  /** Send a request and return its answer (the first message carrying its clientMsgId). */
  async request(typeName, fields, expected) {
    const clientMsgId = `node-${this.nextId++}`;
    const since = this.inbox.length;
    this.send(typeName, fields, clientMsgId);
    const answer = await this.waitFor((e) => e.clientMsgId === clientMsgId, `the answer to ${typeName}`, since);
    if (answer.type === 'ProtoOAErrorRes' || answer.type === 'ProtoErrorRes') {
      const m = answer.message;
      fail(`${typeName} answered with ${answer.type} ${m.errorCode}: ${m.description || ''}`);
    }
    check(answer.type === expected, `${typeName} answered with ${answer.type}, expected ${expected}`);
    return { ...answer, clientMsgId, since };
  }

  startHeartbeats() {
    this.heartbeatTimer = setInterval(() => {
      if (this.closed || this.error) return;
      this.send('ProtoHeartbeatEvent', {});
      this.heartbeatsOut += 1;
    }, HEARTBEAT_EVERY_MS);
  }

  close() {
    clearInterval(this.heartbeatTimer);
    if (this.socket && !this.socket.destroyed) this.socket.end();
  }
}

// -- the flow --------------------------------------------------------------------------------

function ok(step) {
  console.log(`ok: ${step}`);
}

async function flow(conn, schema, info) {
  const enumValue = (enumName, key) => schema.root.lookupEnum(enumName).values[key];
  const EXEC = (key) => enumValue('ProtoOAExecutionType', key);
  const now = Date.now();

  await conn.connect();
  ok('connected over TLS (simulator CA trusted, certificate and host name verified)');
  conn.startHeartbeats();

  await conn.request(
    'ProtoOAApplicationAuthReq',
    { clientId: info.client_id, clientSecret: info.client_secret },
    'ProtoOAApplicationAuthRes',
  );
  ok('application auth');

  const listing = await conn.request(
    'ProtoOAGetAccountListByAccessTokenReq',
    { accessToken: info.access_token },
    'ProtoOAGetAccountListByAccessTokenRes',
  );
  const accounts = listing.message.ctidTraderAccount;
  const demo = accounts.filter((a) => !a.isLive).map((a) => num(a.ctidTraderAccountId));
  check(demo.length > 0, 'the token lists no demo account');
  const expectedIds = new Set(info.accounts.map(Number));
  for (const a of accounts) check(expectedIds.has(num(a.ctidTraderAccountId)), `unknown account ${a.ctidTraderAccountId}`);
  const account = demo[0];
  ok(`account list (${accounts.length} accounts, ${demo.length} demo)`);

  const auth = await conn.request(
    'ProtoOAAccountAuthReq',
    { ctidTraderAccountId: account, accessToken: info.access_token },
    'ProtoOAAccountAuthRes',
  );
  check(num(auth.message.ctidTraderAccountId) === account, 'account auth answered for another account');
  ok(`account auth (${account})`);

  const symbols = await conn.request('ProtoOASymbolsListReq', { ctidTraderAccountId: account }, 'ProtoOASymbolsListRes');
  const light = symbols.message.symbol.find((s) => s.symbolName === EURUSD);
  check(light, `${EURUSD} is not in the symbols list`);
  const symbolId = num(light.symbolId);
  ok(`symbols list (${symbols.message.symbol.length} symbols, ${EURUSD} = ${symbolId})`);

  const byId = await conn.request(
    'ProtoOASymbolByIdReq',
    { ctidTraderAccountId: account, symbolId: [symbolId] },
    'ProtoOASymbolByIdRes',
  );
  check(byId.message.symbol.length === 1, `symbol by id gave ${byId.message.symbol.length} symbols`);
  const symbol = byId.message.symbol[0];
  check(num(symbol.symbolId) === symbolId, 'symbol by id answered another symbol');
  const digits = symbol.digits;
  const pip = 10 ** -symbol.pipPosition;
  ok(`symbol by id (digits ${digits}, pipPosition ${symbol.pipPosition})`);

  const version = await conn.request('ProtoOAVersionReq', {}, 'ProtoOAVersionRes');
  check(version.message.version.length > 0, 'empty server version');
  const traderRes = await conn.request('ProtoOATraderReq', { ctidTraderAccountId: account }, 'ProtoOATraderRes');
  const trader = traderRes.message.trader;
  check(num(trader.ctidTraderAccountId) === account, 'trader record of another account');
  check(/^[a-z0-9_-]+$/.test(trader.brokerName), `brokerName ${JSON.stringify(trader.brokerName)} is not a whitelabel slug`);
  const moneyDigits = has(trader, 'moneyDigits') ? trader.moneyDigits : 2;
  const assets = await conn.request('ProtoOAAssetListReq', { ctidTraderAccountId: account }, 'ProtoOAAssetListRes');
  const deposit = assets.message.asset.find((a) => num(a.assetId) === num(trader.depositAssetId));
  check(deposit, `the deposit asset ${trader.depositAssetId} is not in the asset list`);
  const categories = await conn.request('ProtoOASymbolCategoryListReq', { ctidTraderAccountId: account }, 'ProtoOASymbolCategoryListRes');
  check(categories.message.symbolCategory.length > 0, 'no symbol categories');
  ok(`version ${version.message.version}; trader (broker ${trader.brokerName}, ${deposit.name}, moneyDigits ${moneyDigits}); ${assets.message.asset.length} assets; ${categories.message.symbolCategory.length} categories`);

  // -- spots ------------------------------------------------------------------------------
  const subscribed = await conn.request(
    'ProtoOASubscribeSpotsReq',
    { ctidTraderAccountId: account, symbolId: [symbolId], subscribeToSpotTimestamp: true },
    'ProtoOASubscribeSpotsRes',
  );
  const spots = [];
  await conn.waitFor(
    (e) => {
      if (e.type !== 'ProtoOASpotEvent' || num(e.message.symbolId) !== symbolId) return false;
      spots.push(e.message);
      return spots.length >= SPOTS_WANTED;
    },
    `${SPOTS_WANTED} spot events`,
    subscribed.since,
  );
  const first = spots[0];
  check(has(first, 'bid') && has(first, 'ask'), 'the first spot event lacks bid or ask');
  for (const spot of spots) {
    check(num(spot.ctidTraderAccountId) === account, 'a spot event names another account');
    check(has(spot, 'bid') || has(spot, 'ask'), 'a spot event carries neither bid nor ask');
    if (has(spot, 'bid') && has(spot, 'ask')) check(num(spot.bid) <= num(spot.ask), `bid ${spot.bid} above ask ${spot.ask}`);
    check(has(spot, 'timestamp'), 'a spot event lacks the timestamp asked for');
    const t = num(spot.timestamp);
    check(Math.abs(t - Date.now()) < 120_000, `spot timestamp ${t} is not Unix ms near now`);
  }
  ok(`spot subscription (${spots.length} events, Unix ms timestamps)`);

  const M1 = enumValue('ProtoOATrendbarPeriod', 'M1');
  const live = await conn.request(
    'ProtoOASubscribeLiveTrendbarReq',
    { ctidTraderAccountId: account, symbolId, period: M1 },
    'ProtoOASubscribeLiveTrendbarRes',
  );
  const withBar = await conn.waitFor(
    (e) => e.type === 'ProtoOASpotEvent' && num(e.message.symbolId) === symbolId && e.message.trendbar.length > 0,
    'a spot event carrying the live M1 trendbar',
    live.since,
  );
  const liveBar = withBar.message.trendbar[0];
  check(liveBar.period === M1, `live trendbar period ${liveBar.period}`);
  check(Math.abs(liveBar.utcTimestampInMinutes - Math.floor(Date.now() / 60_000)) <= 1, `live bar minute ${liveBar.utcTimestampInMinutes}`);
  await conn.request(
    'ProtoOAUnsubscribeLiveTrendbarReq',
    { ctidTraderAccountId: account, symbolId, period: M1 },
    'ProtoOAUnsubscribeLiveTrendbarRes',
  );
  ok(`live trendbars (M1 bar of minute ${liveBar.utcTimestampInMinutes} on the spot stream), unsubscribed`);

  const depthSub = await conn.request(
    'ProtoOASubscribeDepthQuotesReq',
    { ctidTraderAccountId: account, symbolId: [symbolId] },
    'ProtoOASubscribeDepthQuotesRes',
  );
  const depth = await conn.waitFor(
    (e) => e.type === 'ProtoOADepthEvent' && num(e.message.symbolId) === symbolId && e.message.newQuotes.length > 0,
    'a depth event with quotes',
    depthSub.since,
  );
  for (const quote of depth.message.newQuotes) {
    check(has(quote, 'bid') !== has(quote, 'ask'), 'a depth quote must be a bid or an ask, not both or neither');
    check(num(quote.size) > 0, 'a depth quote without size');
  }
  await conn.request(
    'ProtoOAUnsubscribeDepthQuotesReq',
    { ctidTraderAccountId: account, symbolId: [symbolId] },
    'ProtoOAUnsubscribeDepthQuotesRes',
  );
  ok(`depth of market (${depth.message.newQuotes.length} quotes in the first event), unsubscribed`);

  // -- history ----------------------------------------------------------------------------
  const to = now - 60_000;
  const from = to - 2 * 3_600_000;
  const bars = await conn.request(
    'ProtoOAGetTrendbarsReq',
    { ctidTraderAccountId: account, symbolId, period: enumValue('ProtoOATrendbarPeriod', 'M1'), fromTimestamp: from, toTimestamp: to },
    'ProtoOAGetTrendbarsRes',
  );
  check(has(bars.message, 'timestamp') && num(bars.message.timestamp) === to, `trendbars timestamp ${bars.message.timestamp} is not toTimestamp ${to}`);
  const trendbars = bars.message.trendbar;
  check(trendbars.length > 0, 'no trendbars');
  let previousMinute = -Infinity;
  for (const bar of trendbars) {
    const minute = bar.utcTimestampInMinutes;
    check(minute > previousMinute, 'trendbars are not in ascending time order');
    check(minute * 60_000 >= from - 60_000 && minute * 60_000 <= to, `trendbar at minute ${minute} is outside the window`);
    const low = num(bar.low);
    check(low > 0 && num(bar.deltaHigh) >= num(bar.deltaOpen) && num(bar.deltaHigh) >= num(bar.deltaClose), 'a trendbar is not a valid OHLC');
    previousMinute = minute;
  }
  ok(`trendbars history (${trendbars.length} M1 bars, timestamp = toTimestamp)`);

  const ticks = await conn.request(
    'ProtoOAGetTickDataReq',
    { ctidTraderAccountId: account, symbolId, type: enumValue('ProtoOAQuoteType', 'BID'), fromTimestamp: to - 600_000, toTimestamp: to },
    'ProtoOAGetTickDataRes',
  );
  const tickData = ticks.message.tickData;
  check(tickData.length > 0, 'no tick data');
  let t = 0;
  let price = 0;
  let previousT = Infinity;
  for (const tick of tickData) {
    t += num(tick.timestamp);
    price += num(tick.tick);
    check(t <= previousT, 'ticks are not newest first');
    check(t >= to - 600_000 && t <= to, `tick at ${t} is outside the window`);
    check(price > 0, 'a tick price is not positive');
    previousT = t;
  }
  ok(`tick data (${tickData.length} bid ticks, newest first, hasMore=${ticks.message.hasMore})`);

  // -- trading ----------------------------------------------------------------------------
  const minVolume = has(symbol, 'minVolume') ? num(symbol.minVolume) : 1;
  const maxVolume = has(symbol, 'maxVolume') ? num(symbol.maxVolume) : Number.MAX_SAFE_INTEGER;
  const volume = Math.min(Math.max(100_000, minVolume), maxVolume);
  const order = await conn.request(
    'ProtoOANewOrderReq',
    {
      ctidTraderAccountId: account,
      symbolId,
      orderType: enumValue('ProtoOAOrderType', 'MARKET'),
      tradeSide: enumValue('ProtoOATradeSide', 'BUY'),
      volume,
      label: 'node-interop',
    },
    'ProtoOAExecutionEvent',
  );
  check(order.message.executionType === EXEC('ORDER_ACCEPTED'), `the first order event is type ${order.message.executionType}, not ORDER_ACCEPTED`);
  const filled = await conn.waitFor(
    (e) => e.type === 'ProtoOAExecutionEvent' && e.clientMsgId === order.clientMsgId && e.message.executionType === EXEC('ORDER_FILLED'),
    'the ORDER_FILLED execution event',
    order.since,
  );
  const position = filled.message.position;
  check(position, 'the fill carries no position');
  check(filled.message.deal, 'the fill carries no deal');
  const positionId = num(position.positionId);
  const entry = has(filled.message.deal, 'executionPrice') ? filled.message.deal.executionPrice : position.price;
  check(entry > 0, 'the fill has no execution price');
  check(num(position.tradeData.volume) === volume, `position volume ${position.tradeData.volume} != ${volume}`);
  ok(`market order -> execution events (accepted, filled; position ${positionId} at ${entry})`);

  const round = (x) => Number(x.toFixed(digits));
  const stopLoss = round(entry - 50 * pip);
  const takeProfit = round(entry + 50 * pip);
  const amended = await conn.request(
    'ProtoOAAmendPositionSLTPReq',
    { ctidTraderAccountId: account, positionId, stopLoss, takeProfit },
    'ProtoOAExecutionEvent',
  );
  check(amended.message.executionType === EXEC('ORDER_REPLACED'), `amend answered execution type ${amended.message.executionType}`);
  const after = amended.message.position;
  check(after && num(after.positionId) === positionId, 'the amend event names another position');
  check(has(after, 'stopLoss') && has(after, 'takeProfit') && after.stopLoss === stopLoss && after.takeProfit === takeProfit, `SL/TP now ${after.stopLoss}/${after.takeProfit}`);
  ok(`amend SL/TP (${stopLoss} / ${takeProfit})`);

  const open = await conn.request('ProtoOAReconcileReq', { ctidTraderAccountId: account }, 'ProtoOAReconcileRes');
  const held = open.message.position.find((p) => num(p.positionId) === positionId);
  check(held, 'reconcile does not list the open position');
  check(held.stopLoss === stopLoss && held.takeProfit === takeProfit, 'reconcile shows other SL/TP');
  ok(`reconcile (${open.message.position.length} positions, ${open.message.order.length} orders)`);

  const pnl = await conn.request(
    'ProtoOAGetPositionUnrealizedPnLReq',
    { ctidTraderAccountId: account },
    'ProtoOAGetPositionUnrealizedPnLRes',
  );
  check(pnl.message.positionUnrealizedPnL.some((p) => num(p.positionId) === positionId), 'no unrealized PnL for the position');
  check(pnl.message.moneyDigits === moneyDigits, `PnL moneyDigits ${pnl.message.moneyDigits} != trader's ${moneyDigits}`);
  const margin = await conn.request(
    'ProtoOAExpectedMarginReq',
    { ctidTraderAccountId: account, symbolId, volume: [volume] },
    'ProtoOAExpectedMarginRes',
  );
  check(margin.message.margin.length === 1 && num(margin.message.margin[0].buyMargin) > 0, 'no expected margin');
  ok(`unrealized PnL and expected margin (moneyDigits ${moneyDigits})`);

  const limitPrice = round(entry - 200 * pip);
  const limit = await conn.request(
    'ProtoOANewOrderReq',
    {
      ctidTraderAccountId: account,
      symbolId,
      orderType: enumValue('ProtoOAOrderType', 'LIMIT'),
      tradeSide: enumValue('ProtoOATradeSide', 'BUY'),
      volume,
      limitPrice,
    },
    'ProtoOAExecutionEvent',
  );
  check(limit.message.executionType === EXEC('ORDER_ACCEPTED'), `limit order answered execution type ${limit.message.executionType}`);
  const orderId = num(limit.message.order.orderId);
  check(limit.message.order.limitPrice === limitPrice, `limit price ${limit.message.order.limitPrice}`);
  const movedPrice = round(limitPrice - 10 * pip);
  const moved = await conn.request(
    'ProtoOAAmendOrderReq',
    { ctidTraderAccountId: account, orderId, volume, limitPrice: movedPrice },
    'ProtoOAExecutionEvent',
  );
  check(moved.message.executionType === EXEC('ORDER_REPLACED'), `amend order answered execution type ${moved.message.executionType}`);
  check(moved.message.order.limitPrice === movedPrice, `amended limit price ${moved.message.order.limitPrice}`);
  const cancelled = await conn.request(
    'ProtoOACancelOrderReq',
    { ctidTraderAccountId: account, orderId },
    'ProtoOAExecutionEvent',
  );
  check(cancelled.message.executionType === EXEC('ORDER_CANCELLED'), `cancel answered execution type ${cancelled.message.executionType}`);
  const details = await conn.request('ProtoOAOrderDetailsReq', { ctidTraderAccountId: account, orderId }, 'ProtoOAOrderDetailsRes');
  check(details.message.order.orderStatus === enumValue('ProtoOAOrderStatus', 'ORDER_STATUS_CANCELLED'), 'order details do not say cancelled');
  ok(`limit order ${orderId} at ${limitPrice} -> amended to ${movedPrice} -> cancelled (order details agree)`);

  const closing = await conn.request(
    'ProtoOAClosePositionReq',
    { ctidTraderAccountId: account, positionId, volume },
    'ProtoOAExecutionEvent',
  );
  const closed = await conn.waitFor(
    (e) => e.type === 'ProtoOAExecutionEvent' && e.clientMsgId === closing.clientMsgId && e.message.executionType === EXEC('ORDER_FILLED'),
    'the closing ORDER_FILLED event',
    closing.since,
  );
  const closeDeal = closed.message.deal;
  check(closeDeal && has(closeDeal, 'closePositionDetail'), 'the closing deal has no closePositionDetail');
  check(closed.message.position.positionStatus === enumValue('ProtoOAPositionStatus', 'POSITION_STATUS_CLOSED'), 'the position is not closed');
  ok(`close position (closing deal ${closeDeal.dealId}, gross profit ${closeDeal.closePositionDetail.grossProfit})`);

  const deals = await conn.request(
    'ProtoOADealListReq',
    { ctidTraderAccountId: account, fromTimestamp: now - 3_600_000, toTimestamp: Date.now() + 60_000, maxRows: 1000 },
    'ProtoOADealListRes',
  );
  const mine = deals.message.deal.filter((d) => num(d.positionId) === positionId);
  check(mine.length >= 2, `deal list holds ${mine.length} deals of the position, expected open and close`);
  check(mine.some((d) => has(d, 'closePositionDetail')), 'the deal list lacks the closing deal');
  ok(`deal list (${deals.message.deal.length} deals, ${mine.length} of the position)`);

  const byPosition = await conn.request(
    'ProtoOADealListByPositionIdReq',
    { ctidTraderAccountId: account, positionId, fromTimestamp: now - 3_600_000, toTimestamp: Date.now() + 60_000 },
    'ProtoOADealListByPositionIdRes',
  );
  check(byPosition.message.deal.length === mine.length, `deals by position ${byPosition.message.deal.length} != ${mine.length}`);
  const orders = await conn.request(
    'ProtoOAOrderListReq',
    { ctidTraderAccountId: account, fromTimestamp: now - 3_600_000, toTimestamp: Date.now() + 60_000 },
    'ProtoOAOrderListRes',
  );
  check(orders.message.order.some((o) => num(o.orderId) === orderId), 'the order list lacks the cancelled limit order');
  const cash = await conn.request(
    'ProtoOACashFlowHistoryListReq',
    { ctidTraderAccountId: account, fromTimestamp: Date.now() - 604_800_000 + 60_000, toTimestamp: Date.now() },
    'ProtoOACashFlowHistoryListRes',
  );
  for (const op of cash.message.depositWithdraw) {
    check(!has(op, 'moneyDigits') || op.moneyDigits === moneyDigits, `cash flow moneyDigits ${op.moneyDigits}`);
  }
  ok(`deals by position (${byPosition.message.deal.length}), order list (${orders.message.order.length}), cash flow (${cash.message.depositWithdraw.length} operations in the last week)`);

  const flat = await conn.request('ProtoOAReconcileReq', { ctidTraderAccountId: account }, 'ProtoOAReconcileRes');
  check(!flat.message.position.some((p) => num(p.positionId) === positionId), 'reconcile still lists the closed position');
  ok('reconcile after close (position gone)');

  // -- heartbeats -------------------------------------------------------------------------
  await conn.request(
    'ProtoOAUnsubscribeSpotsReq',
    { ctidTraderAccountId: account, symbolId: [symbolId] },
    'ProtoOAUnsubscribeSpotsRes',
  );
  const quiet = conn.inbox.length;
  await conn.waitFor((e) => e.type === 'ProtoHeartbeatEvent', 'a server heartbeat on a quiet connection', quiet, 45_000);
  check(conn.heartbeatsOut > 0, 'the flow ended before any client heartbeat was sent');
  ok(`heartbeats (${conn.heartbeatsOut} sent, ${conn.heartbeatsIn} received)`);

  // -- logout -----------------------------------------------------------------------------
  const logout = await conn.request('ProtoOAAccountLogoutReq', { ctidTraderAccountId: account }, 'ProtoOAAccountLogoutRes');
  const gone = await conn.waitFor((e) => e.type === 'ProtoOAAccountDisconnectEvent', 'ProtoOAAccountDisconnectEvent', logout.since);
  check(num(gone.message.ctidTraderAccountId) === account, 'the disconnect event names another account');
  ok('logout (ProtoOAAccountLogoutRes, then ProtoOAAccountDisconnectEvent)');
}

async function main() {
  const raw = process.env.CTRADER_SIM_INFO;
  const protoSource = PROTO_SOURCE;
  if (!raw || !protoSource) {
    console.error('usage: CTRADER_SIM_INFO=<json> node client.js [--modules DIR] --proto-dir DIR');
    return 2;
  }
  const info = JSON.parse(raw);
  const labels = JSON.parse(fs.readFileSync(path.join(__dirname, 'release88-labels.json'), 'utf8')).required;
  let protoDir = null;
  let conn = null;
  const timer = setTimeout(() => {
    console.log(`FAILED: the flow took longer than ${FLOW_TIMEOUT_MS / 1000} s`);
    if (protoDir) fs.rmSync(protoDir, { recursive: true, force: true });
    process.exit(1);
  }, FLOW_TIMEOUT_MS);
  try {
    protoDir = schemaWithOldLabels(protoSource, labels);
    const schema = loadSchema(protoDir);
    const restored = Object.entries(labels).flatMap(([m, names]) => names.map((f) => `${m}.${f}`));
    console.log(`node ${process.version}, protobufjs ${PROTOBUFJS_VERSION}, schema ${protoSource}`);
    console.log(`required again (as up to release 88): ${restored.join(', ')}`);
    conn = new Connection(schema, info);
    await flow(conn, schema, info);
    return 0;
  } catch (err) {
    console.log(`FAILED: ${err instanceof Deviation ? err.message : err.stack || err}`);
    return 1;
  } finally {
    clearTimeout(timer);
    if (conn) conn.close();
    if (protoDir) fs.rmSync(protoDir, { recursive: true, force: true });
  }
}

main().then((code) => {
  process.exitCode = code;
  // Let the TLS close flush, then leave even if a timer or socket lingers.
  setTimeout(() => process.exit(code), 200).unref();
});
