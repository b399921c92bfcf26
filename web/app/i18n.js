// i18n.js holds every string the wall screen shows, in Vietnamese (the
// default) and English, and the helpers that pick and apply them.

import { AQI_BANDS } from './aqi_bands.js';

const STORAGE_KEY = 'iochub.lang';

/** @typedef {'vi' | 'en'} Lang */

/** @type {Lang[]} */
export const LANGS = ['vi', 'en'];

/** @type {Record<Lang, Record<string, string>>} */
export const strings = {
  vi: {
    title: 'iochub — Trung tâm giám sát, điều hành thông minh',
    brand: 'Trung tâm giám sát, điều hành thông minh',
    province: 'Tỉnh/thành phố {code}',
    switchTo: 'EN',
    switchTitle: 'Switch to English',
    logout: 'Đăng xuất',
    'login.title': 'Đăng nhập màn hình giám sát',
    'login.label': 'Khóa truy cập (do quản trị viên cấp)',
    'login.submit': 'Đăng nhập',
    'login.refused': 'Khóa không hợp lệ hoặc đã bị thu hồi',
    'login.codeUsed': 'Mã đăng nhập đã được dùng hoặc đã hết hạn; hãy nhập khóa truy cập',
    'login.again': 'Phiên đăng nhập đã hết hiệu lực; hãy đăng nhập lại',
    'conn.connecting': 'Đang kết nối',
    'conn.online': 'Trực tuyến',
    'conn.offline': 'Mất kết nối…',
    'conn.retry': 'Mất kết nối… thử lại sau {s} giây',
    'count.stations': 'Trạm quan trắc',
    'count.segments': 'Đoạn đường',
    'count.alerts': 'Cảnh báo',
    'replay.badge': 'ĐANG PHÁT LẠI',
    'replay.live': 'Trực tiếp',
    'replay.slider': 'Xem lại 24 giờ qua',
    'replay.now': 'Trực tiếp',
    'replay.pause': 'Tạm dừng',
    'replay.play': 'Phát tiếp',
    'count.wards': 'Phường/xã',
    lastUpdate: 'Cập nhật',
    never: '—',
    'legend.title': 'Chú giải',
    'legend.pm25': 'PM2.5 (µg/m³)',
    'legend.pm25Note': 'Màu theo VN_AQI giờ của trạm (QĐ 1459/QĐ-TCMT); theo PM2.5 khi chưa tính được',
    'legend.water': 'Trạm thủy văn (theo thứ tự màu): bình thường, báo động I, II, III',
    'legend.weather': 'Trạm khí tượng',
    'water.alarm0': 'Dưới báo động I',
    'water.alarm1': 'Báo động I',
    'water.alarm2': 'Báo động II',
    'water.alarm3': 'Báo động III',
    'aqi.none': 'chưa tính được',
    'aqi.daily': 'ngày hôm trước',
    'aqi.dominant': 'chất chính',
    'popup.water': 'Trạm thủy văn',
    'popup.weather': 'Trạm khí tượng',
    'value.precipitation': 'Lượng mưa',
    'value.atmosphericPressure': 'Áp suất khí quyển',
    'value.waterLevel': 'Mực nước',
    'value.alarmLevel1': 'Mức báo động I',
    'value.alarmLevel2': 'Mức báo động II',
    'value.alarmLevel3': 'Mức báo động III',
    'value.flow': 'Lưu lượng dòng chảy',
    'value.pH': 'pH',
    'value.conductivity': 'Độ dẫn điện',
    'value.turbidity': 'Độ đục',
    'value.O2': 'Oxy hòa tan',
    'legend.noValue': 'Không có số liệu',
    'legend.speed': 'Tốc độ trung bình (km/h)',
    'legend.speedSlow': '< 15 — ùn tắc',
    'legend.speedMid': '15–30 — chậm',
    'legend.speedFast': '≥ 30 — thông thoáng',
    'legend.alert': 'Vùng cảnh báo',
    'legend.ward': 'Ranh giới phường/xã',
    'alerts.title': 'Cảnh báo đang hiệu lực',
    'alerts.none': 'Không có cảnh báo',
    'alerts.more': '+{n} cảnh báo khác',
    'alerts.units': 'Đơn vị',
    'alerts.sent': 'Phát lúc',
    'alerts.expires': 'Hết hạn',
    'alerts.ack': 'Xác nhận',
    'alerts.acking': 'Đang xác nhận…',
    'alerts.acked': 'Đã xác nhận: {by}, {at}',
    'alerts.ackFailed': 'Không xác nhận được cảnh báo; thử lại',
    'severity.Extreme': 'Cực kỳ nghiêm trọng',
    'severity.Severe': 'Nghiêm trọng',
    'severity.Moderate': 'Trung bình',
    'severity.Minor': 'Nhẹ',
    'severity.Unknown': 'Không rõ',
    'popup.station': 'Trạm quan trắc không khí',
    'popup.segment': 'Đoạn đường',
    'popup.alert': 'Cảnh báo',
    'popup.ward': 'Phường/xã',
    'popup.time': 'Thời điểm đo',
    'popup.unit': 'Đơn vị hành chính',
    'popup.code': 'Mã',
    'value.pm25': 'PM2.5',
    'value.pm10': 'PM10',
    'value.pm1': 'PM1',
    'value.no2': 'NO₂',
    'value.o3': 'O₃',
    'value.co': 'CO',
    'value.so2': 'SO₂',
    'value.nh3': 'NH₃',
    'value.no': 'NO',
    'value.nox': 'NOx',
    'value.temperature': 'Nhiệt độ',
    'value.relativeHumidity': 'Độ ẩm tương đối',
    'value.windSpeed': 'Tốc độ gió',
    'value.windDirection': 'Hướng gió',
    'value.intensity': 'Lưu lượng',
    'value.occupancy': 'Độ chiếm dụng',
    'value.averageVehicleSpeed': 'Tốc độ trung bình',
    'value.averageVehicleLength': 'Chiều dài xe trung bình',
    'value.averageHeadwayTime': 'Giãn cách trung bình',
    'value.congested': 'Ùn tắc',
    'value.laneId': 'Làn',
    'value.laneDirection': 'Hướng làn',
    'unit.intensity': 'xe/giờ',
    'lane.forward': 'xuôi chiều',
    'lane.backward': 'ngược chiều',
    yes: 'Có',
    no: 'Không',
    'fatal.noMap': 'Không tải được thư viện bản đồ (vendor/maplibre-gl-csp.js). Hãy chạy web/scripts/vendor.sh rồi build lại iochub. Các con số và danh sách cảnh báo vẫn được cập nhật trực tuyến.',
    'fatal.noWebGL': 'Trình duyệt không hiển thị được bản đồ (thiếu WebGL): {err}. Số liệu trực tuyến vẫn được cập nhật.',
    'fatal.units': 'Không tải được ranh giới hành chính: {err}. Đang thử lại…',
  },
  en: {
    title: 'iochub — Intelligent Operations Center',
    brand: 'Intelligent Operations Center',
    province: 'Province {code}',
    switchTo: 'VI',
    switchTitle: 'Chuyển sang tiếng Việt',
    logout: 'Sign out',
    'login.title': 'Sign in to the wall screen',
    'login.label': 'Access key (from your administrator)',
    'login.submit': 'Sign in',
    'login.refused': 'The key is not valid or was revoked',
    'login.codeUsed': 'The sign-in code was used or has expired; enter an access key',
    'login.again': 'The session has ended; sign in again',
    'conn.connecting': 'Connecting',
    'conn.online': 'Online',
    'conn.offline': 'Disconnected…',
    'conn.retry': 'Disconnected… retrying in {s} s',
    'count.stations': 'Stations',
    'count.segments': 'Segments',
    'count.alerts': 'Alerts',
    'replay.badge': 'REPLAY',
    'replay.live': 'Live',
    'replay.slider': 'Replay the last 24 hours',
    'replay.now': 'Live',
    'replay.pause': 'Pause',
    'replay.play': 'Play',
    'count.wards': 'Wards',
    lastUpdate: 'Updated',
    never: '—',
    'legend.title': 'Legend',
    'legend.pm25': 'PM2.5 (µg/m³)',
    'legend.pm25Note': 'Colour of the station\'s hourly VN_AQI (Decision 1459/QĐ-TCMT); by PM2.5 when there is none',
    'legend.water': 'Hydrological station (by colour): normal, alarm I, II, III',
    'legend.weather': 'Weather station',
    'water.alarm0': 'Below alarm level I',
    'water.alarm1': 'Alarm level I',
    'water.alarm2': 'Alarm level II',
    'water.alarm3': 'Alarm level III',
    'aqi.none': 'not computed',
    'aqi.daily': 'previous day',
    'aqi.dominant': 'dominant',
    'popup.water': 'Hydrological station',
    'popup.weather': 'Weather station',
    'value.precipitation': 'Precipitation',
    'value.atmosphericPressure': 'Atmospheric pressure',
    'value.waterLevel': 'Water level',
    'value.alarmLevel1': 'Alarm level I',
    'value.alarmLevel2': 'Alarm level II',
    'value.alarmLevel3': 'Alarm level III',
    'value.flow': 'Flow',
    'value.pH': 'pH',
    'value.conductivity': 'Conductivity',
    'value.turbidity': 'Turbidity',
    'value.O2': 'Dissolved oxygen',
    'legend.noValue': 'No data',
    'legend.speed': 'Average speed (km/h)',
    'legend.speedSlow': '< 15 — congested',
    'legend.speedMid': '15–30 — slow',
    'legend.speedFast': '≥ 30 — free flow',
    'legend.alert': 'Alert area',
    'legend.ward': 'Ward boundary',
    'alerts.title': 'Active alerts',
    'alerts.none': 'No active alerts',
    'alerts.more': '+{n} more alerts',
    'alerts.units': 'Units',
    'alerts.sent': 'Sent',
    'alerts.expires': 'Expires',
    'alerts.ack': 'Acknowledge',
    'alerts.acking': 'Acknowledging…',
    'alerts.acked': 'Acknowledged by {by}, {at}',
    'alerts.ackFailed': 'The alert could not be acknowledged; retry',
    'severity.Extreme': 'Extreme',
    'severity.Severe': 'Severe',
    'severity.Moderate': 'Moderate',
    'severity.Minor': 'Minor',
    'severity.Unknown': 'Unknown',
    'popup.station': 'Air quality station',
    'popup.segment': 'Road segment',
    'popup.alert': 'Alert',
    'popup.ward': 'Ward',
    'popup.time': 'Observed at',
    'popup.unit': 'Administrative unit',
    'popup.code': 'Code',
    'value.pm25': 'PM2.5',
    'value.pm10': 'PM10',
    'value.pm1': 'PM1',
    'value.no2': 'NO₂',
    'value.o3': 'O₃',
    'value.co': 'CO',
    'value.so2': 'SO₂',
    'value.nh3': 'NH₃',
    'value.no': 'NO',
    'value.nox': 'NOx',
    'value.temperature': 'Temperature',
    'value.relativeHumidity': 'Relative humidity',
    'value.windSpeed': 'Wind speed',
    'value.windDirection': 'Wind direction',
    'value.intensity': 'Intensity',
    'value.occupancy': 'Occupancy',
    'value.averageVehicleSpeed': 'Average speed',
    'value.averageVehicleLength': 'Average vehicle length',
    'value.averageHeadwayTime': 'Average headway',
    'value.congested': 'Congested',
    'value.laneId': 'Lane',
    'value.laneDirection': 'Lane direction',
    'unit.intensity': 'veh/h',
    'lane.forward': 'forward',
    'lane.backward': 'backward',
    yes: 'Yes',
    no: 'No',
    'fatal.noMap': 'The map library (vendor/maplibre-gl-csp.js) did not load. Run web/scripts/vendor.sh and rebuild iochub. The figures and the alert list still update live.',
    'fatal.noWebGL': 'This browser cannot draw the map (no WebGL): {err}. Live figures still update.',
    'fatal.units': 'Could not load the administrative boundaries: {err}. Retrying…',
  },
};

// The wall's tiles, layers, roll-ups, CAP categories and event codes.
Object.assign(strings.vi, {
  'layer.air': 'Không khí',
  'layer.traffic': 'Giao thông',
  'layer.water': 'Thủy văn',
  'layer.title': 'Tô màu phường/xã theo',
  'kpi.window': 'Giờ hiện tại',
  'trend.span': '{what} · 6 giờ',
  'trend.title': '{what}, 6 giờ qua',
  'trend.failed': 'Không tải được diễn biến',
  'kpi.air': 'Chất lượng không khí',
  'kpi.worstAqi': 'VN_AQI cao nhất',
  'kpi.stationsBand': 'Số trạm theo mức',
  'kpi.reporting': '{n}/{m} trạm có số liệu',
  'kpi.traffic': 'Giao thông',
  'kpi.congested': 'Đoạn ùn tắc',
  'kpi.meanSpeed': 'Tốc độ TB',
  'kpi.segmentsReporting': '{n}/{m} đoạn có số liệu',
  'kpi.water': 'Thủy văn',
  'kpi.alarm': 'Trạm ở mức báo động',
  'kpi.alerts': 'Cảnh báo theo mức độ',
  'kpi.reports': 'Phản ánh',
  'kpi.open': 'Đang xử lý',
  'kpi.overdue': 'Quá hạn',
  'kpi.stale': 'Nguồn mất tín hiệu',
  'kpi.staleEntities': '{n} trạm/đoạn số liệu cũ',
  'kpi.noData': 'Chưa có số liệu tổng hợp',
  'kpi.worstUnits': 'Phường/xã cần chú ý',
  'kpi.none': 'Không có',
  'unitLegend.air': 'Phường/xã: mức VN_AQI cao nhất trong giờ',
  'unitLegend.traffic': 'Phường/xã: tỷ lệ đoạn đường ùn tắc trong giờ',
  'unitLegend.water': 'Phường/xã: mức báo động cao nhất trong giờ',
  'unitLegend.none': 'Chưa có số liệu',
  'unitLegend.hubStale': 'Mất kết nối trung tâm tỉnh (số liệu cũ)',
  'unitLegend.national.air': 'Tỉnh/thành: mức VN_AQI cao nhất trong giờ',
  'unitLegend.national.traffic': 'Tỉnh/thành: tỷ lệ đoạn đường ùn tắc trong giờ',
  'unitLegend.national.water': 'Tỉnh/thành: mức báo động cao nhất trong giờ',
  'congestion.0': '< 10 %',
  'congestion.1': '10–25 %',
  'congestion.2': '25–50 %',
  'congestion.3': '≥ 50 %',
  'stale': 'Số liệu cũ: nguồn ngừng gửi',
  'alerts.left': 'Hiệu lực',
  'alerts.category': 'Loại',
  'rollup.title': 'Tổng hợp giờ hiện tại',
  'rollup.aqiMax': 'VN_AQI cao nhất',
  'rollup.aqiMean': 'VN_AQI trung bình',
  'rollup.stations': 'Trạm có số liệu',
  'rollup.meanSpeed': 'Tốc độ trung bình',
  'rollup.congested': 'Đoạn ùn tắc',
  'rollup.alarmMax': 'Mức báo động cao nhất',
  'rollup.levelMax': 'Mực nước cao nhất',
  'rollup.none': 'Chưa có số liệu trong giờ',
  'capCat.Geo': 'Địa chất', 'capCat.Met': 'Khí tượng', 'capCat.Safety': 'An toàn', 'capCat.Security': 'An ninh',
  'capCat.Rescue': 'Cứu hộ', 'capCat.Fire': 'Cháy nổ', 'capCat.Health': 'Y tế', 'capCat.Env': 'Môi trường',
  'capCat.Transport': 'Giao thông', 'capCat.Infra': 'Hạ tầng', 'capCat.CBRNE': 'Hóa sinh phóng xạ', 'capCat.Other': 'Khác',
  'event.trafficJam': 'Ùn tắc giao thông',
  'event.airPollution': 'Ô nhiễm không khí',
  'event.heavyRain': 'Mưa lớn',
  'event.flood': 'Ngập lụt',
  'event.traffic': 'Giao thông',
  'event.environment': 'Môi trường',
  'event.weather': 'Thời tiết',
  'history.loading': 'Đang tải diễn biến 24 giờ…',
  'history.none': 'Chưa có số liệu trong 24 giờ qua',
  'history.failed': 'Không tải được diễn biến: {err}',
  'history.noLibrary': 'Thiếu thư viện biểu đồ (vendor/uPlot.iife.min.js); chạy web/scripts/vendor.sh',
  'history.last24h': '24 giờ qua',
  'history.pm25': 'PM2.5 trung bình',
  'history.aqi': 'VN_AQI cao nhất',
  'history.speed': 'Tốc độ trung bình',
  'history.level': 'Mực nước cao nhất',
  'history.temperature': 'Nhiệt độ trung bình',
});
Object.assign(strings.en, {
  'layer.air': 'Air',
  'layer.traffic': 'Traffic',
  'layer.water': 'Water',
  'layer.title': 'Colour wards by',
  'kpi.window': 'This hour',
  'trend.span': '{what} · 6 h',
  'trend.title': '{what}, last 6 hours',
  'trend.failed': 'Could not load the trend',
  'kpi.air': 'Air quality',
  'kpi.worstAqi': 'Worst VN_AQI',
  'kpi.stationsBand': 'Stations per band',
  'kpi.reporting': '{n}/{m} stations reporting',
  'kpi.traffic': 'Traffic',
  'kpi.congested': 'Congested segments',
  'kpi.meanSpeed': 'Mean speed',
  'kpi.segmentsReporting': '{n}/{m} segments reporting',
  'kpi.water': 'Water',
  'kpi.alarm': 'Stations at alarm level',
  'kpi.alerts': 'Alerts by severity',
  'kpi.reports': 'Citizen reports',
  'kpi.open': 'Open',
  'kpi.overdue': 'Overdue',
  'kpi.stale': 'Stale sources',
  'kpi.staleEntities': '{n} stations/segments with old data',
  'kpi.noData': 'No roll-up yet',
  'kpi.worstUnits': 'Wards to watch',
  'kpi.none': 'None',
  'unitLegend.air': 'Wards: worst VN_AQI this hour',
  'unitLegend.traffic': 'Wards: share of segments congested this hour',
  'unitLegend.water': 'Wards: highest alarm level this hour',
  'unitLegend.none': 'No data',
  'unitLegend.hubStale': 'Province hub unreachable (old figures)',
  'unitLegend.national.air': 'Provinces: worst VN_AQI this hour',
  'unitLegend.national.traffic': 'Provinces: share of segments congested this hour',
  'unitLegend.national.water': 'Provinces: highest alarm level this hour',
  'congestion.0': '< 10%',
  'congestion.1': '10–25%',
  'congestion.2': '25–50%',
  'congestion.3': '≥ 50%',
  'stale': 'Old data: the source stopped sending',
  'alerts.left': 'In force',
  'alerts.category': 'Category',
  'rollup.title': 'This hour',
  'rollup.aqiMax': 'Worst VN_AQI',
  'rollup.aqiMean': 'Mean VN_AQI',
  'rollup.stations': 'Stations reporting',
  'rollup.meanSpeed': 'Mean speed',
  'rollup.congested': 'Congested segments',
  'rollup.alarmMax': 'Highest alarm level',
  'rollup.levelMax': 'Highest water level',
  'rollup.none': 'No data this hour',
  'capCat.Geo': 'Geophysical', 'capCat.Met': 'Meteorological', 'capCat.Safety': 'Safety', 'capCat.Security': 'Security',
  'capCat.Rescue': 'Rescue', 'capCat.Fire': 'Fire', 'capCat.Health': 'Health', 'capCat.Env': 'Environment',
  'capCat.Transport': 'Transport', 'capCat.Infra': 'Infrastructure', 'capCat.CBRNE': 'CBRNE', 'capCat.Other': 'Other',
  'event.trafficJam': 'Traffic jam',
  'event.airPollution': 'Air pollution',
  'event.heavyRain': 'Heavy rain',
  'event.flood': 'Flood',
  'event.traffic': 'Traffic',
  'event.environment': 'Environment',
  'event.weather': 'Weather',
  'history.loading': 'Loading the last 24 hours…',
  'history.none': 'No data in the last 24 hours',
  'history.failed': 'Could not load the history: {err}',
  'history.noLibrary': 'The chart library (vendor/uPlot.iife.min.js) is missing; run web/scripts/vendor.sh',
  'history.last24h': 'last 24 h',
  'history.pm25': 'Mean PM2.5',
  'history.aqi': 'Worst VN_AQI',
  'history.speed': 'Mean speed',
  'history.level': 'Highest water level',
  'history.temperature': 'Mean temperature',
});

/**
 * label translates a code under prefix ("capCat", "event", …), or returns
 * the code when there is no translation (then it is text, not a code).
 * @param {string} prefix
 * @param {unknown} code
 * @returns {string}
 */
export function label(prefix, code) {
  const key = `${prefix}.${code}`;
  const s = t(key);
  return s === key ? String(code ?? '') : s;
}

// The VN_AQI band names come with their colours from aqi_bands.js, which go
// generate writes from internal/aqi.
for (const b of AQI_BANDS) {
  strings.vi[`aqi.band${b.level}`] = b.nameVi;
  strings.en[`aqi.band${b.level}`] = b.nameEn;
}

// Units of the observation values, the same in both languages.
/** @type {Record<string, string>} */
export const valueUnits = {
  pm25: 'µg/m³', pm10: 'µg/m³', pm1: 'µg/m³', no2: 'µg/m³', o3: 'µg/m³', co: 'µg/m³',
  so2: 'µg/m³', nh3: 'µg/m³', no: 'µg/m³', nox: 'µg/m³', temperature: '°C',
  relativeHumidity: '%', windSpeed: 'm/s', windDirection: '°',
  precipitation: 'mm', atmosphericPressure: 'hPa', waterLevel: 'm', alarmLevel1: 'm', alarmLevel2: 'm', alarmLevel3: 'm',
  flow: 'm³/s', conductivity: 'S/m', turbidity: 'NTU', O2: 'mg/L',
  occupancy: '%', averageVehicleSpeed: 'km/h', averageVehicleLength: 'm', averageHeadwayTime: 's',
};

/** @type {Lang} */
let current = 'vi';
try {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (saved === 'vi' || saved === 'en') current = saved;
} catch {
  // localStorage can be denied (private mode, file://); Vietnamese stays.
}

/** @returns {Lang} */
export function lang() {
  return current;
}

// setLang switches the language, remembers it, and re-applies static labels.
/** @param {string} l */
export function setLang(l) {
  if (l !== 'vi' && l !== 'en') throw new Error(`unknown language ${JSON.stringify(l)}; want one of ${LANGS.join(', ')}`);
  current = l;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, l);
  } catch {
    // Not remembered, but still switched.
  }
  apply(document);
}

// t returns the string for key in the current language, with {name}
// placeholders filled from params; an unknown key falls back to Vietnamese,
// then to the key itself so a gap shows instead of a blank.
/**
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params) {
  let s = strings[current][key] ?? strings.vi[key] ?? key;
  if (params) {
    s = s.replace(/\{(\w+)\}/g, (/** @type {string} */ m, /** @type {string} */ name) => (name in params ? String(params[name]) : m));
  }
  return s;
}

// apply fills every element with a data-i18n attribute (its text) or
// data-i18n-title (its title attribute), and the document's title and lang.
/** @param {Document | HTMLElement} root */
export function apply(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n ?? '');
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    /** @type {HTMLElement} */ (el).title = t(/** @type {HTMLElement} */ (el).dataset.i18nTitle ?? '');
  }
  if (root === document) {
    document.documentElement.lang = current;
    document.title = t('title');
  }
}

// locale is the BCP 47 tag used to format numbers and times.
export function locale() {
  return current === 'vi' ? 'vi-VN' : 'en-GB';
}
