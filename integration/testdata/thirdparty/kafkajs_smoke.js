// kafkajs against a kafkit broker: admin, idempotent producer (none and
// gzip), consumer group with commits, group admin, transactions (commit and
// abort, read_committed consumer), topic deletion.
// Usage: node kafkajs_smoke.js host:port; exits non-zero on any mismatch.
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')
const kafka = new Kafka({ clientId: 'smoke', brokers: [process.argv[2]], logLevel: logLevel.WARN })
async function main() {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: 'kjs', numPartitions: 3 }] })
  const md = await admin.fetchTopicMetadata({ topics: ['kjs'] })
  if (md.topics[0].partitions.length !== 3) throw new Error('partitions')
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let b = 0; b < 10; b++) {
    const messages = []
    for (let i = 0; i < 100; i++) messages.push({ key: `k${i % 7}`, value: `v-${b}-${i}`, headers: { h: 'x' } })
    await producer.send({ topic: 'kjs', messages, acks: -1, compression: b % 2 ? CompressionTypes.GZIP : CompressionTypes.None })
  }
  await producer.disconnect()
  const offsets = await admin.fetchTopicOffsets('kjs')
  if (offsets.reduce((a, o) => a + Number(o.high), 0) !== 1000) throw new Error('offsets ' + JSON.stringify(offsets))
  const consumer = kafka.consumer({ groupId: 'kjs-group', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  await consumer.subscribe({ topic: 'kjs', fromBeginning: true })
  let n = 0
  const done = new Promise(resolve => {
    consumer.run({ eachMessage: async ({ message }) => { if (message.headers.h.toString() !== 'x') throw new Error('header'); if (++n === 1000) resolve() } })
  })
  await done
  await new Promise(r => setTimeout(r, 1500)) // let the auto-commit happen
  await consumer.disconnect()
  const committed = await admin.fetchOffsets({ groupId: 'kjs-group', topics: ['kjs'] })
  const sum = committed[0].partitions.reduce((a, p) => a + Number(p.offset), 0)
  if (n !== 1000 || sum !== 1000) throw new Error(`consumed ${n}, committed ${sum}`)
  const groups = await admin.listGroups()
  if (!groups.groups.some(g => g.groupId === 'kjs-group')) throw new Error('group not listed')
  const desc = await admin.describeGroups(['kjs-group'])
  if (desc.groups[0].state !== 'Empty') throw new Error(`group state ${desc.groups[0].state}`)
  // Transactions: one committed, one aborted; a read_committed consumer
  // (kafkajs' default) sees only the committed records.
  await admin.createTopics({ topics: [{ topic: 'kjs-tx', numPartitions: 2 }] })
  const txp = kafka.producer({ transactionalId: 'kjs-tx', idempotent: true, maxInFlightRequests: 1 })
  await txp.connect()
  let tx = await txp.transaction()
  await tx.send({ topic: 'kjs-tx', messages: [{ key: 'a', value: 'committed-1' }, { key: 'b', value: 'committed-2' }] })
  await tx.commit()
  tx = await txp.transaction()
  await tx.send({ topic: 'kjs-tx', messages: [{ key: 'a', value: 'aborted' }] })
  await tx.abort()
  tx = await txp.transaction()
  await tx.send({ topic: 'kjs-tx', messages: [{ key: 'c', value: 'committed-3' }] })
  await tx.commit()
  await txp.disconnect()
  const txc = kafka.consumer({ groupId: 'kjs-tx-group', sessionTimeout: 10000, heartbeatInterval: 1000 })
  await txc.connect()
  await txc.subscribe({ topic: 'kjs-tx', fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    txc.run({ eachMessage: async ({ message }) => {
      got.push(message.value.toString())
      if (message.value.toString() === 'aborted') reject(new Error('read an aborted record'))
      if (got.length === 3) resolve()
    } })
  })
  await new Promise(r => setTimeout(r, 500))
  await txc.disconnect()
  if (got.sort().join(',') !== 'committed-1,committed-2,committed-3') throw new Error('transactional read: ' + got)
  await admin.deleteTopics({ topics: ['kjs'] })
  if ((await admin.listTopics()).includes('kjs')) throw new Error('topic not deleted')
  console.log('ok')
  await admin.disconnect()
}
main().then(() => process.exit(0)).catch(e => { console.error('FAILED', e); process.exit(1) })
