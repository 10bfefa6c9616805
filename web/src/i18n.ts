import { Store, useStore } from './state';

export type Lang = 'en' | 'zh';

const en = {
  'app.name': 'IT0',
  'nav.chat': 'Chat', 'nav.approvals': 'Approvals', 'nav.orders': 'Standing orders', 'nav.fleet': 'Fleet',
  'nav.monitoring': 'Monitoring', 'nav.escalations': 'Escalations', 'nav.audit': 'Audit', 'nav.settings': 'Settings',
  'nav.signout': 'Sign out', 'nav.menu': 'Main navigation',
  'login.title': 'Sign in to IT0', 'login.email': 'Email', 'login.password': 'Password', 'login.submit': 'Sign in',
  'login.expired': 'Your session ended: {reason}. Sign in again.',
  'common.loading': 'Loading…', 'common.retry': 'Retry', 'common.save': 'Save', 'common.cancel': 'Cancel',
  'common.delete': 'Delete', 'common.none': 'Nothing here yet.', 'common.refresh': 'Refresh', 'common.all': 'All',
  'common.status': 'Status', 'common.name': 'Name', 'common.created': 'Created', 'common.actions': 'Actions',
  'common.filter': 'Filter', 'common.close': 'Close', 'common.saved': 'Saved.', 'common.error': 'Error',
  'chat.new': 'New task', 'chat.placeholder': 'Tell the agent what to do…', 'chat.send': 'Send', 'chat.cancel': 'Cancel run',
  'chat.sessions': 'Sessions', 'chat.engine': 'Engine', 'chat.skill': 'Skill', 'chat.noSkill': 'No skill',
  'chat.thinking': 'Thinking', 'chat.state.idle': 'Idle', 'chat.state.running': 'Running', 'chat.state.waiting': 'Waiting for approval',
  'chat.state.completed': 'Completed', 'chat.state.failed': 'Failed', 'chat.state.cancelled': 'Cancelled',
  'chat.reconnecting': 'Connection lost; reconnecting (nothing is lost)…', 'chat.empty': 'Start a task: describe what you need done on your servers.',
  'chat.done': 'Done', 'chat.tokens': '{n} tokens', 'chat.jump': 'Jump to latest',
  'tool.output': 'Output', 'tool.showAll': 'Show all ({n} lines)', 'tool.fold': 'Fold', 'tool.running': 'Running…',
  'tool.truncated': 'Output is {size}; showing the first and last parts.', 'tool.download': 'Download full output',
  'approval.title': 'Approval needed', 'approval.approve': 'Approve', 'approval.reject': 'Reject', 'approval.reason': 'Reason (optional)',
  'approval.autoApprove': 'Auto-approves in {t}', 'approval.autoReject': 'Auto-rejects in {t}', 'approval.expired': 'Expired',
  'approval.approved': 'Approved', 'approval.rejected': 'Rejected', 'approval.viewOnly': 'Your role can view but not decide.',
  'approval.needAdmin': 'L2 needs an admin.', 'approval.queue': 'Approval queue', 'approval.bulkReject': 'Reject selected ({n})',
  'approval.level': 'Level', 'approval.server': 'Server', 'approval.order': 'Standing order', 'approval.session': 'Session',
  'approval.command': 'Command', 'approval.expires': 'Expires',
  'draft.title': 'Standing order draft', 'draft.trigger': 'Trigger', 'draft.targets': 'Targets', 'draft.boundary': 'Boundary',
  'draft.does': 'Does', 'draft.maxRisk': 'May run up to L{n}; escalates the rest', 'draft.confirm': 'Confirm', 'draft.edit': 'Ask for changes',
  'draft.editPrompt': 'Please change the draft: ',
  'orders.title': 'Standing orders', 'orders.next': 'Next run', 'orders.last': 'Last result', 'orders.pause': 'Pause',
  'orders.resume': 'Resume', 'orders.run': 'Run now', 'orders.archive': 'Archive', 'orders.executions': 'Executions',
  'orders.escalation': 'Escalation', 'orders.edit': 'Edit', 'orders.allowed': 'Allowed actions', 'orders.escalateIf': 'Escalate when',
  'orders.prompt': 'Instructions', 'orders.started': 'Run started: {id}',
  'trigger.cron': 'On schedule {expr} ({tz})', 'trigger.event': 'When {event} happens', 'trigger.threshold': 'When {metric} {op} {value} for {d}s',
  'trigger.manual': 'Only when started by hand', 'targets.all': 'All servers', 'targets.env': 'in {env}', 'targets.tags': 'tagged {tags}',
  'fleet.servers': 'Servers', 'fleet.clusters': 'Clusters', 'fleet.credentials': 'Credentials', 'fleet.import': 'Import from ssh_config',
  'fleet.importHint': 'Paste an ssh_config (Host blocks) or choose a file.', 'fleet.importDo': 'Import', 'fleet.check': 'Check connectivity',
  'fleet.run': 'Run on selected', 'fleet.command': 'Command', 'fleet.env': 'Environment', 'fleet.role': 'Role', 'fleet.tags': 'Tags',
  'fleet.host': 'Host', 'fleet.fingerprint': 'Fingerprint', 'fleet.addCredential': 'Add credential', 'fleet.secret': 'Secret (write-only)',
  'fleet.kind': 'Kind', 'fleet.hop': 'Hop', 'fleet.ok': 'OK', 'fleet.failed': 'Failed',
  'fleet.addCluster': 'Add cluster', 'fleet.editCluster': 'Edit cluster', 'fleet.description': 'Description', 'fleet.stored': 'stored',
  'fleet.kubeconfig': 'kubeconfig (write-only, optional)', 'fleet.kubeconfigReplace': 'Replace kubeconfig (write-only; empty keeps the stored one)',
  'fleet.clusterDeleteConfirm': 'Remove cluster {name}?',
  'mon.checks': 'Health checks', 'mon.alerts': 'Alerts', 'mon.metrics': 'Metrics', 'mon.ack': 'Acknowledge', 'mon.server': 'Server',
  'mon.range': 'Range', 'mon.noData': 'No samples in this range.', 'mon.severity': 'Severity',
  'esc.live': 'Escalations', 'esc.steps': 'Steps', 'esc.contacts': 'Contacts', 'esc.policies': 'Policies', 'esc.test': 'Test send',
  'esc.channel': 'Channel', 'esc.delivery': 'Delivery', 'esc.answeredBy': 'Answered by', 'esc.sent': 'Test message sent.',
  'esc.audience': 'Audience', 'esc.channels': 'Channels', 'esc.disabled': 'disabled', 'esc.inApp': 'in the app',
  'esc.notConfigured': 'not configured', 'esc.testOn': 'Test send to {name} on {channel}', 'esc.removeConfirm': 'Remove contact {name}?',
  'esc.addContact': 'Add contact', 'esc.phone': 'Phone (E.164)', 'esc.linkMe': 'This is me (in-app notices)', 'esc.preferred': 'Preferred channel',
  'esc.status.sent': 'Sent', 'esc.status.delivered': 'Delivered', 'esc.status.failed': 'Failed', 'esc.status.skipped': 'Skipped',
  'esc.status.pending': 'Pending (retrying)', 'esc.editPolicy': 'Edit the {sev} policy', 'esc.stepText': '{d}: {ch} → {aud}',
  'esc.now': 'At once', 'esc.min': 'After {n} min', 'esc.sec': 'After {n} s', 'esc.step': 'Step {n}', 'esc.delay': 'Delay (seconds)',
  'esc.removeStep': 'Remove step', 'esc.addStep': 'Add step',
  'audit.title': 'Audit log', 'audit.actor': 'Actor', 'audit.action': 'Action', 'audit.resource': 'Resource', 'audit.from': 'From', 'audit.to': 'To',
  'audit.verify': 'Verify chain', 'audit.verifyOk': 'Chain intact: {n} records verified.', 'audit.verifyBad': 'Chain broken: {detail}',
  'audit.export': 'Export', 'audit.more': 'Load more', 'audit.time': 'Time',
  'settings.users': 'Users and roles', 'settings.apiKeys': 'API keys', 'settings.keyShown': 'Copy this key now; it is shown only once:',
  'settings.engine': 'Engine', 'settings.timeouts': 'Approval timeouts', 'settings.l1': 'L1 auto-approves after (s)', 'settings.l2': 'L2 auto-rejects after (s)',
  'settings.report': 'Daily report', 'settings.rules': 'Risk-rule overrides (YAML)', 'settings.language': 'Language', 'settings.theme': 'Theme',
  'settings.light': 'Light', 'settings.dark': 'Dark', 'settings.create': 'Create', 'settings.email': 'Email', 'settings.role': 'Role',
  'settings.revoke': 'Revoke', 'settings.tz': 'Time zone', 'settings.time': 'Time', 'settings.enabled': 'Enabled',
  'alert.escalation': 'Escalation', 'alert.openChat': 'Open chat', 'alert.talk': 'Talk', 'alert.dismiss': 'Dismiss', 'alert.feed': 'Alerts',
  'voice.start': 'Talk to the agent', 'voice.stop': 'Stop talking', 'voice.listening': 'Listening', 'voice.thinking': 'Thinking', 'voice.speaking': 'Speaking',
  'voice.denied': 'Microphone permission denied.',
  'risk.0': 'L0 read-only', 'risk.1': 'L1 low-risk write', 'risk.2': 'L2 high-risk', 'risk.3': 'L3 forbidden',
};

type Key = keyof typeof en;

const zh: Record<Key, string> = {
  'app.name': 'IT0',
  'nav.chat': '对话', 'nav.approvals': '审批', 'nav.orders': '常驻指令', 'nav.fleet': '服务器', 'nav.monitoring': '监控',
  'nav.escalations': '升级通知', 'nav.audit': '审计', 'nav.settings': '设置', 'nav.signout': '退出登录', 'nav.menu': '主导航',
  'login.title': '登录 IT0', 'login.email': '邮箱', 'login.password': '密码', 'login.submit': '登录',
  'login.expired': '会话已结束：{reason}。请重新登录。',
  'common.loading': '加载中…', 'common.retry': '重试', 'common.save': '保存', 'common.cancel': '取消', 'common.delete': '删除',
  'common.none': '暂无内容。', 'common.refresh': '刷新', 'common.all': '全部', 'common.status': '状态', 'common.name': '名称',
  'common.created': '创建时间', 'common.actions': '操作', 'common.filter': '筛选', 'common.close': '关闭', 'common.saved': '已保存。', 'common.error': '错误',
  'chat.new': '新任务', 'chat.placeholder': '告诉智能体要做什么…', 'chat.send': '发送', 'chat.cancel': '取消运行',
  'chat.sessions': '会话', 'chat.engine': '引擎', 'chat.skill': '技能', 'chat.noSkill': '不使用技能', 'chat.thinking': '思考过程',
  'chat.state.idle': '空闲', 'chat.state.running': '运行中', 'chat.state.waiting': '等待审批', 'chat.state.completed': '已完成',
  'chat.state.failed': '失败', 'chat.state.cancelled': '已取消', 'chat.reconnecting': '连接中断，正在重连（不会丢失事件）…',
  'chat.empty': '开始一个任务：描述你需要在服务器上完成的工作。', 'chat.done': '完成', 'chat.tokens': '{n} 个 token', 'chat.jump': '跳到最新',
  'tool.output': '输出', 'tool.showAll': '展开全部（{n} 行）', 'tool.fold': '折叠', 'tool.running': '执行中…',
  'tool.truncated': '输出共 {size}，只显示开头和结尾。', 'tool.download': '下载完整输出',
  'approval.title': '需要审批', 'approval.approve': '批准', 'approval.reject': '拒绝', 'approval.reason': '理由（可选）',
  'approval.autoApprove': '{t} 后自动批准', 'approval.autoReject': '{t} 后自动拒绝', 'approval.expired': '已过期',
  'approval.approved': '已批准', 'approval.rejected': '已拒绝', 'approval.viewOnly': '你的角色只能查看，不能审批。',
  'approval.needAdmin': 'L2 需要管理员审批。', 'approval.queue': '审批队列', 'approval.bulkReject': '拒绝所选（{n}）',
  'approval.level': '级别', 'approval.server': '服务器', 'approval.order': '常驻指令', 'approval.session': '会话',
  'approval.command': '命令', 'approval.expires': '到期',
  'draft.title': '常驻指令草稿', 'draft.trigger': '触发', 'draft.targets': '目标', 'draft.boundary': '决策边界', 'draft.does': '内容',
  'draft.maxRisk': '最多执行 L{n}，其余升级给人', 'draft.confirm': '确认', 'draft.edit': '要求修改', 'draft.editPrompt': '请修改草稿：',
  'orders.title': '常驻指令', 'orders.next': '下次运行', 'orders.last': '上次结果', 'orders.pause': '暂停', 'orders.resume': '恢复',
  'orders.run': '立即运行', 'orders.archive': '归档', 'orders.executions': '执行记录', 'orders.escalation': '升级',
  'orders.edit': '编辑', 'orders.allowed': '允许的操作', 'orders.escalateIf': '何时升级', 'orders.prompt': '指令', 'orders.started': '已开始运行：{id}',
  'trigger.cron': '按计划 {expr}（{tz}）', 'trigger.event': '当 {event} 发生时', 'trigger.threshold': '当 {metric} {op} {value} 持续 {d} 秒',
  'trigger.manual': '仅手动启动', 'targets.all': '所有服务器', 'targets.env': '环境 {env}', 'targets.tags': '标签 {tags}',
  'fleet.servers': '服务器', 'fleet.clusters': '集群', 'fleet.credentials': '凭据', 'fleet.import': '从 ssh_config 导入',
  'fleet.importHint': '粘贴 ssh_config（Host 块）或选择文件。', 'fleet.importDo': '导入', 'fleet.check': '连通性检查',
  'fleet.run': '在所选服务器上执行', 'fleet.command': '命令', 'fleet.env': '环境', 'fleet.role': '角色', 'fleet.tags': '标签',
  'fleet.host': '主机', 'fleet.fingerprint': '指纹', 'fleet.addCredential': '添加凭据', 'fleet.secret': '密钥（只写）',
  'fleet.kind': '类型', 'fleet.hop': '跳', 'fleet.ok': '成功', 'fleet.failed': '失败',
  'fleet.addCluster': '添加集群', 'fleet.editCluster': '编辑集群', 'fleet.description': '描述', 'fleet.stored': '已保存',
  'fleet.kubeconfig': 'kubeconfig（只写，可选）', 'fleet.kubeconfigReplace': '替换 kubeconfig（只写；留空则保留已存的）',
  'fleet.clusterDeleteConfirm': '删除集群 {name}？',
  'mon.checks': '健康检查', 'mon.alerts': '告警', 'mon.metrics': '指标', 'mon.ack': '确认', 'mon.server': '服务器',
  'mon.range': '时间范围', 'mon.noData': '该时间范围内没有数据。', 'mon.severity': '严重度',
  'esc.live': '升级通知', 'esc.steps': '步骤', 'esc.contacts': '联系人', 'esc.policies': '策略', 'esc.test': '测试发送',
  'esc.channel': '渠道', 'esc.delivery': '送达状态', 'esc.answeredBy': '应答人', 'esc.sent': '测试消息已发送。',
  'esc.audience': '对象', 'esc.channels': '渠道', 'esc.disabled': '已停用', 'esc.inApp': '应用内',
  'esc.notConfigured': '未配置', 'esc.testOn': '向 {name} 的 {channel} 测试发送', 'esc.removeConfirm': '删除联系人 {name}？',
  'esc.addContact': '添加联系人', 'esc.phone': '电话（E.164）', 'esc.linkMe': '这是我（应用内通知）', 'esc.preferred': '首选渠道',
  'esc.status.sent': '已发送', 'esc.status.delivered': '已送达', 'esc.status.failed': '失败', 'esc.status.skipped': '已跳过',
  'esc.status.pending': '待重试', 'esc.editPolicy': '编辑 {sev} 策略', 'esc.stepText': '{d}：{ch} → {aud}',
  'esc.now': '立即', 'esc.min': '{n} 分钟后', 'esc.sec': '{n} 秒后', 'esc.step': '第 {n} 步', 'esc.delay': '延迟（秒）',
  'esc.removeStep': '删除此步', 'esc.addStep': '添加步骤',
  'audit.title': '审计日志', 'audit.actor': '操作者', 'audit.action': '动作', 'audit.resource': '资源', 'audit.from': '从', 'audit.to': '到',
  'audit.verify': '校验哈希链', 'audit.verifyOk': '哈希链完整：已校验 {n} 条记录。', 'audit.verifyBad': '哈希链损坏：{detail}',
  'audit.export': '导出', 'audit.more': '加载更多', 'audit.time': '时间',
  'settings.users': '用户与角色', 'settings.apiKeys': 'API 密钥', 'settings.keyShown': '请立即复制此密钥，它只显示一次：',
  'settings.engine': '引擎', 'settings.timeouts': '审批超时', 'settings.l1': 'L1 自动批准时间（秒）', 'settings.l2': 'L2 自动拒绝时间（秒）',
  'settings.report': '每日报告', 'settings.rules': '风险规则覆盖（YAML）', 'settings.language': '语言', 'settings.theme': '主题',
  'settings.light': '浅色', 'settings.dark': '深色', 'settings.create': '创建', 'settings.email': '邮箱', 'settings.role': '角色',
  'settings.revoke': '吊销', 'settings.tz': '时区', 'settings.time': '时间', 'settings.enabled': '启用',
  'alert.escalation': '升级通知', 'alert.openChat': '打开对话', 'alert.talk': '语音通话', 'alert.dismiss': '关闭', 'alert.feed': '通知',
  'voice.start': '与智能体语音对话', 'voice.stop': '结束语音', 'voice.listening': '聆听中', 'voice.thinking': '思考中', 'voice.speaking': '播报中',
  'voice.denied': '麦克风权限被拒绝。',
  'risk.0': 'L0 只读', 'risk.1': 'L1 低风险写', 'risk.2': 'L2 高风险', 'risk.3': 'L3 禁止',
};

const dicts: Record<Lang, Record<Key, string>> = { en, zh };

// The language and theme (not the session) are remembered in localStorage.
function initial(): Lang {
  const saved = globalThis.localStorage?.getItem('it0.lang');
  if (saved === 'en' || saved === 'zh') return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export const lang = new Store<Lang>(typeof navigator === 'undefined' ? 'en' : initial());

export function setLang(l: Lang) {
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
  globalThis.localStorage?.setItem('it0.lang', l);
  lang.set(l);
}

export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const s = dicts[lang.get()][key] ?? en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : '{' + k + '}'));
}

// useT re-renders the component when the language changes.
export function useT(): typeof t {
  useStore(lang);
  return t;
}

export function fmtTime(s?: string | null): string {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d.getTime()) ? '—' : d.toLocaleString(lang.get() === 'zh' ? 'zh-CN' : 'en');
}

export function fmtDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(s % 60).padStart(2, '0')}`;
}
