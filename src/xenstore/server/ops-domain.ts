/**
 * Domain management and xenstored control: INTRODUCE, RELEASE, IS_DOMAIN_INTRODUCED,
 * GET_DOMAIN_PATH, RESUME, SET_TARGET, GET/SET_FEATURE, GET/SET_QUOTA, CONTROL (domain.c,
 * control.c).
 */
import { DOMID_FIRST_RESERVED } from '../../base/index.js';
import { domainPath, OK_PAYLOAD, strings, XsError } from '../protocol/index.js';
import type { Handler, OpReply, RequestOf } from './context.js';
import { SERVER_FEATURES } from './features.js';
import { isQuotaName, QUOTA_NAMES } from './limits.js';

const ok: OpReply = { payload: OK_PAYLOAD };

function realDomid(domid: number): number {
  if (domid >= DOMID_FIRST_RESERVED) throw new XsError('EINVAL', 'not a real domain id');
  return domid;
}

/** INTRODUCE <domid>|<gfn>|<evtchn>|: start serving the domain's ring page. */
export const doIntroduce: Handler<RequestOf<'introduce'>> = (ctx, req) => {
  ctx.d.introduceDomain(realDomid(req.domid), req.gfn, req.port);
  return ok;
};

/** RELEASE <domid>|: stop serving it; its nodes, watches and quota settings go with it. */
export const doRelease: Handler<RequestOf<'release'>> = (ctx, req) => {
  // The control domain is never released: its nodes are the store's own.
  if (ctx.d.domains.isPrivileged(req.domid)) throw new XsError('EINVAL', 'cannot release a privileged domain');
  const dom = ctx.d.domains.get(realDomid(req.domid));
  if (dom === undefined || !dom.introduced) throw new XsError('ENOENT');
  ctx.d.releaseDomain(req.domid);
  return ok;
};

export const doIsDomainIntroduced: Handler<RequestOf<'isDomainIntroduced'>> = (ctx, req) => {
  const dom = ctx.d.domains.get(req.domid);
  const yes = ctx.d.domains.isPrivileged(req.domid) || (dom?.introduced ?? false);
  return { payload: strings([yes ? 'T' : 'F']) };
};

export const doGetDomainPath: Handler<RequestOf<'getDomainPath'>> = (_ctx, req) => ({
  payload: strings([domainPath(req.domid)]),
});

/** RESUME: "@releaseDomain events will once more be generated when the domain becomes shut down". */
export const doResume: Handler<RequestOf<'resume'>> = (ctx, req) => {
  const dom = ctx.d.domains.get(req.domid);
  if (dom === undefined || !dom.introduced) throw new XsError('ENOENT');
  dom.shutdown = false;
  return ok;
};

/** SET_TARGET <domid>|<tdomid>|: <domid> gets <tdomid>'s rights (a device-model stubdom). */
export const doSetTarget: Handler<RequestOf<'setTarget'>> = (ctx, req) => {
  const dom = ctx.d.domains.get(req.domid);
  const target = ctx.d.domains.get(req.target);
  if (dom === undefined || !dom.introduced || target === undefined || !target.introduced) throw new XsError('ENOENT');
  dom.target = req.target;
  return ok;
};

/** GET_FEATURE [<domid>|]: the caller's own features, or (privileged, or own domid) a domain's. */
export const doGetFeature: Handler<RequestOf<'getFeature'>> = (ctx, req) => {
  if (req.domid === undefined) return { payload: strings([String(ctx.d.featuresOf(ctx.conn))]) };
  if (!ctx.caller.privileged && req.domid !== ctx.caller.domid) throw new XsError('EACCES');
  const dom = ctx.d.domains.get(req.domid);
  if (dom === undefined) {
    if (!ctx.d.domainExists(req.domid)) throw new XsError('ENOENT');
    return { payload: strings([String(SERVER_FEATURES)]) };
  }
  return { payload: strings([String(dom.features)]) };
};

/** SET_FEATURE <domid>|<value>|: only before INTRODUCE (EBUSY after), only bits we offer (EINVAL). */
export const doSetFeature: Handler<RequestOf<'setFeature'>> = (ctx, req) => {
  if ((req.features & ~SERVER_FEATURES) !== 0) throw new XsError('EINVAL', 'unsupported feature');
  if (!ctx.d.domainExists(req.domid)) throw new XsError('ENOENT');
  const dom = ctx.d.domains.ensure(req.domid);
  if (dom.introduced) throw new XsError('EBUSY');
  dom.features = req.features;
  return ok;
};

/** GET_QUOTA [[<domid>|]<quota>|]: a value, or with no argument the space-separated quota names. */
export const doGetQuota: Handler<RequestOf<'getQuota'>> = (ctx, req) => {
  if (req.quota === undefined) {
    if (req.domid !== undefined) throw new XsError('EINVAL');
    return { payload: strings([Object.keys(QUOTA_NAMES).join(' ')]) };
  }
  if (!isQuotaName(req.quota)) throw new XsError('EINVAL', 'unknown quota');
  const key = QUOTA_NAMES[req.quota];
  if (req.domid === undefined) return { payload: strings([String(ctx.d.quotas.getGlobal(key))]) };
  if (ctx.d.domains.get(req.domid) === undefined && !ctx.d.domainExists(req.domid)) throw new XsError('ENOENT');
  return { payload: strings([String(ctx.d.quota(req.domid, key))]) };
};

/** SET_QUOTA [<domid>|]<quota>|<value>|: 0 ("disabled") is refused, as in C. */
export const doSetQuota: Handler<RequestOf<'setQuota'>> = (ctx, req) => {
  if (!isQuotaName(req.quota) || req.value === 0) throw new XsError('EINVAL');
  if (req.domid !== undefined) {
    if (!ctx.d.domainExists(req.domid)) throw new XsError('ENOENT');
    ctx.d.domains.ensure(req.domid);
  }
  ctx.d.setQuota(req.domid, QUOTA_NAMES[req.quota], req.value);
  return ok;
};

const CONTROL_HELP = ['check', 'connections', 'help', 'log', 'print', 'quota'];

/** CONTROL <command>|[<parameters>|]: the implementation-specific commands we support. */
export const doControl: Handler<RequestOf<'control'>> = (ctx, req) => {
  const [cmd, ...args] = req.args;
  switch (cmd) {
    case 'help':
      return { payload: strings([CONTROL_HELP.join('\n') + '\n']) };
    case 'check': {
      const problems = ctx.d.checkAccounting();
      return { payload: strings([problems.length === 0 ? 'OK' : problems.join('\n')]) };
    }
    case 'connections':
      // Every connection's queues, pauses and (for a ring) the shared page's indices: what a
      // guest stuck waiting for a reply is waiting on.
      return { payload: strings([[...ctx.d.connections].map((c) => c.describe()).join('\n') + '\n']) };
    case 'print':
      ctx.d.log(args.join(' '));
      return ok;
    case 'log':
      return ok;
    case 'quota':
      return { payload: strings([quotaReport(ctx.d.quotaReport())]) };
    default:
      throw new XsError('EINVAL', 'unknown control command');
  }
};

function quotaReport(rows: [string, number][]): string {
  return rows.map(([k, v]) => `${k.padEnd(18)}: ${v}`).join('\n') + '\n';
}
