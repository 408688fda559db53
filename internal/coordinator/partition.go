package coordinator

import "unicode/utf16"

// PartitionFor is the __consumer_offsets partition holding group's records:
// Utils.abs(groupId.hashCode()) % numPartitions, as Kafka computes it, so
// tools reading the topic find a group where Kafka would have put it.
func PartitionFor(group string, numPartitions int32) int32 {
	h := javaStringHash(group)
	if h == -1<<31 {
		h = 0 // Kafka's Utils.abs maps Integer.MIN_VALUE to 0
	} else if h < 0 {
		h = -h
	}
	return h % numPartitions
}

// javaStringHash is java.lang.String.hashCode: over UTF-16 code units, with
// int32 wrap-around.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}
